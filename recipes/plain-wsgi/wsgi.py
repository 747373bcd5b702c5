"""The WSGI entry point: ``wsgi:application``.

uWSGI (and gunicorn with ``preload_app``) imports this module once, in the
master, and then forks the workers. So the module creates the schema with a
short-lived application that it closes at once, and only arranges for each
worker to construct its own application, right after the fork. (With uWSGI's
``lazy-apps``, the module is imported in each worker instead, after the fork,
and the application can be constructed at once.)


``python wsgi.py`` serves it with the standard library's development server.
"""

import atexit
import logging

from bank_api import make_app
from process import create_schema, start_worker, stop_worker, worker_application

logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s")

create_schema()
application = make_app(worker_application)


def start_uwsgi_worker() -> None:
    start_worker()
    atexit.register(stop_worker)  # registered in the worker, so only it runs it


try:
    import uwsgi
    from uwsgidecorators import postfork
except ImportError:  # not running under uWSGI
    pass
else:
    if uwsgi.worker_id() == 0:  # imported in the master: construct after each fork
        postfork(start_uwsgi_worker)
    else:  # lazy-apps: imported in a worker, already after the fork
        start_uwsgi_worker()


if __name__ == "__main__":
    import os
    from wsgiref.simple_server import make_server

    start_worker()
    with make_server("127.0.0.1", int(os.environ.get("PORT") or 8000), application) as server:
        logging.getLogger(__name__).info("serving on http://127.0.0.1:%s (development only)", server.server_port)
        try:
            server.serve_forever()
        finally:
            stop_worker()
