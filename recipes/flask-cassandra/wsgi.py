"""The WSGI entry point that uwsgi.ini and gunicorn.conf.py name: ``wsgi:app``.

uWSGI (by default) and gunicorn (with ``preload_app``) import this module once,
in the master, and then fork the workers. So the module creates the schema
with a short-lived application that it closes at once, builds the Flask app
(which connects to nothing), and only arranges for each worker to connect to
Cassandra right after the fork: uWSGI's ``@postfork`` here, gunicorn's
``post_worker_init`` in gunicorn.conf.py. (With uWSGI's ``lazy-apps``, each worker
imports this module itself, after the fork, and connects at once.)

``python wsgi.py`` serves it with Flask's development server.
"""

import atexit
import logging

from bank import create_app
from bank.accounts import create_schema, start_worker, stop_worker

logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s")

try:
    import uwsgi
    from uwsgidecorators import postfork
except ImportError:  # not running under uWSGI
    uwsgi = None  # type: ignore[assignment]  # no module: tested below

if uwsgi is not None and uwsgi.worker_id() != 0:
    # lazy-apps: every worker runs this. Cassandra is not safe against
    # concurrent schema changes, so uWSGI's lock lets one worker at a time in;
    # the first creates the tables, the others find them there.
    uwsgi.lock()
    try:
        create_schema()
    finally:
        uwsgi.unlock()
else:  # the master (or the development server): once per deployment
    create_schema()

app = create_app()


def start_uwsgi_worker() -> None:
    start_worker()
    atexit.register(stop_worker)  # registered in the worker, so only it runs it


if uwsgi is not None:
    if uwsgi.worker_id() == 0:  # imported in the master: connect after each fork
        postfork(start_uwsgi_worker)
    else:  # lazy-apps: imported in a worker, already after the fork
        start_uwsgi_worker()


if __name__ == "__main__":
    import os

    start_worker()
    try:
        # The development server: threaded, no debugger, no reloader.
        app.run(host="127.0.0.1", port=int(os.environ.get("PORT") or 8000))
    finally:
        stop_worker()
