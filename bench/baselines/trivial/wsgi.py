"""The load generator's ceiling: the smallest WSGI app, served by the same uWSGI config.

It answers every request at once with a short JSON body, touching no database
and no framework, so requests per second against it measure wrk, uWSGI's
accept-and-respond loop and the loopback, which no recipe can beat.
"""

import json
import os

BODY = json.dumps({"status": "ok", "pid": os.getpid()}).encode()


def application(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
