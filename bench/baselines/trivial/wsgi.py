"""The load generator's ceiling: the smallest WSGI app, served by the same uWSGI config.

It answers every request at once with a short JSON body, touching no database
and no framework, so requests per second against it measure wrk, uWSGI's
accept-and-respond loop and the loopback, which no recipe can beat.
"""

import json
import os

#: The body, per process: the pid is the worker's (this module is imported in
#: uWSGI's master, before the fork), so the harness can tell every worker answered.
BODIES = {}


def application(environ, start_response):
    environ["wsgi.input"].read()
    pid = os.getpid()
    body = BODIES.get(pid) or BODIES.setdefault(pid, json.dumps({"status": "ok", "pid": pid}).encode())
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
