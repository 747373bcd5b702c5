"""Granian for the Flask recipe. Start it from this folder: python serve_granian.py

Knobs, from the environment: PORT (default 8000), WEB_CONCURRENCY (default 4
worker processes), HOST (default 127.0.0.1), REQUEST_TIMEOUT (default 10
seconds), DATABASE_URL (default: an SQLite file under ./var). Granian reads no
configuration file: this script is its configuration. It imports wsgi.py once,
here, as uWSGI and gunicorn (preload_app) do, then Granian forks the workers,
and each worker constructs its application on its first request.

Three things differ from uWSGI and gunicorn, and the worker below handles them:
Granian has no post-fork hook, its workers never run atexit functions, and it
has no time limit for a request.
"""

from __future__ import annotations

import os
from typing import Any

from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.server import Server
from sqlalchemy import event

import wsgi
from bank.db import db
from bankaccounts.lifecycle import close_application
from bankaccounts.prefork_signals import GRANIAN_MASTER_SIGNALS, GRANIAN_STOP_SIGNALS, release, take_in_a_thread
from bankaccounts.request_body import WSGIApp
from bankaccounts.request_deadline import RequestDeadline
from bankaccounts.timeouts import server_timeout

#: uWSGI's harakiri and gunicorn's timeout end a request at REQUEST_TIMEOUT + 5 s;
#: under Granian each worker keeps that limit itself (bankaccounts/request_deadline.py).
deadline = RequestDeadline(server_timeout())
with wsgi.app.app_context():
    event.listen(db.engine, "connect", lambda connection, record: deadline.track(connection))
    event.listen(db.engine, "do_connect", lambda dialect, record, args, kwargs: deadline.check())


def worker_app() -> WSGIApp:
    """What each worker serves: wsgi.py's app, its requests watched by the deadline."""
    return deadline.wsgi(wsgi.app)


def worker(*args: Any, **kwargs: Any) -> None:
    """One worker process, from its fork to its exit, around Granian's own worker function.

    - Signals: Granian's worker has its master's handlers until it installs its own, and
      once serving, its main thread waits on a lock, where it acts only on a signal the
      kernel delivers to that very thread. A stop that came early, or went to another of
      its threads, was lost: its master killed it after workers_kill_timeout. It inherits
      the master's signals held (below); a thread takes its stops, and calls Granian's
      handler once it is in place (bankaccounts/prefork_signals.py).
    - The worker ends with os._exit (Python's multiprocessing), so wsgi.py's atexit hook
      never runs: the application is closed here, after the last request.
    """
    release(GRANIAN_MASTER_SIGNALS - GRANIAN_STOP_SIGNALS)  # a worker does not reload
    take_in_a_thread(GRANIAN_STOP_SIGNALS)
    deadline.start()
    try:
        Server._spawn_wsgi_worker(*args, **kwargs)  # serves until stopped, then its requests end
    finally:
        close_application()


if __name__ == "__main__":
    # Before Granian starts a thread or a worker: each starts with them held too.
    take_in_a_thread(GRANIAN_MASTER_SIGNALS)
    Server(
        "wsgi:app",
        address=os.environ.get("HOST") or "127.0.0.1",
        port=int(os.environ.get("PORT") or "8000"),
        interface=Interfaces.WSGI,
        workers=int(os.environ.get("WEB_CONCURRENCY") or "4"),
        # One request at a time in a worker, as under uWSGI and gunicorn here (Granian's
        # default: half its backpressure, 128 threads for 4 workers, on 15 connections each).
        blocking_threads=1,
        # Granian's default is to stop the whole server when a worker dies. Even so, it
        # stops when a worker it respawned dies within 5.5 s (to Granian, a crash loop):
        # run it under a supervisor that starts it again (systemd's Restart=on-failure).
        respawn_failed_workers=True,
        # On SIGTERM each worker finishes its requests for up to 10 s, closes its
        # application, and exits; one still busy is killed.
        workers_kill_timeout=10,
        # A request's line and headers in 8 KiB at most (Granian's default: 417 KiB),
        # as gunicorn's and uWSGI's limits: a larger one is refused, unread.
        http1_settings=HTTP1Settings(max_buffer_size=8192),
        log_access=True,
        # Granian's line, and the X-Forwarded-For a proxy in front sets (the
        # client's address: the connection is the proxy's), as gunicorn logs it here.
        log_access_format='[%(time)s] %(addr)s - "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3f'
        " forwarded-for=%(header{x-forwarded-for})s",
    ).serve(spawn_target=worker, target_loader=worker_app, wrap_loader=False)
