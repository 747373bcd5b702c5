"""gunicorn with uvicorn's worker, for the FastAPI recipe. Start it from this folder:
gunicorn -c gunicorn.conf.py

Knobs, from the environment: PORT (default 8000), HOST (default 127.0.0.1),
WEB_CONCURRENCY (default 4 worker processes), THREADS, REQUEST_TIMEOUT,
DATABASE_URL (README). gunicorn forks its workers; each runs an event loop,
and each worker's application is built by the lifespan, after the fork.
"""

import os

from bankaccounts.prefork_signals import GUNICORN_STOP_SIGNALS, hold_in_forked_children, release

wsgi_app = "asgi:app"
worker_class = "uvicorn_worker.UvicornWorker"
bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"
workers = int(os.environ.get("WEB_CONCURRENCY") or "4")
# Not preload_app: the master would import asgi.py for nothing (the lifespan
# builds the application in each worker either way).
preload_app = False
# SIGTERM: workers finish their requests for up to 10 s, close their applications, exit.
graceful_timeout = 10
# A worker whose event loop does not tick for 30 s (blocked: never by the
# application, which runs in threads) is killed and replaced.
timeout = 30
accesslog = "-"
# gunicorn 27 opens a control socket under $HOME by default; not needed here.
control_socket_disable = True

# Never lose a stop signal. A new worker has the master's signal handlers until
# its own are in place, and a SIGTERM that came then was lost: the master waited
# graceful_timeout, then killed the worker with its application still open.
# Each worker starts with its stop signals held instead, and post_worker_init
# lets them in (bankaccounts/prefork_signals.py).
hold_in_forked_children(GUNICORN_STOP_SIGNALS)


def post_worker_init(worker: object) -> None:
    """Runs in each worker after the fork, before it serves. uvicorn's worker has
    set the stop signals to their default action (its init_signals) and installs
    its own handlers as it starts serving, before the lifespan: a stop let in now
    ends the worker at once, before it has constructed anything, or is handled."""
    release(GUNICORN_STOP_SIGNALS)


def pre_exec(server: object) -> None:
    """A master re-executed by SIGUSR2 must not start with its stop signals held."""
    release(GUNICORN_STOP_SIGNALS)
