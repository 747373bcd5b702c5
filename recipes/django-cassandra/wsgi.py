"""The WSGI entry point that uwsgi.ini and gunicorn.conf.py name: ``wsgi:application``.

Both servers import this module once, in the master process, then fork the
workers. Importing it sets Django up, which opens nothing: the project has no
database connection of its own, and the Cassandra session belongs to the
event-sourced application, which each worker constructs after the fork
(``start_worker``) and closes as it exits (``stop_worker``). uWSGI calls them
through ``postfork`` and ``atexit`` (below); gunicorn through ``post_worker_init``
and ``worker_exit`` in gunicorn.conf.py.
"""

import atexit
import os

# Name the settings module before Django is imported.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application

from bankaccounts.request_body import read_whole_body

# Each body read whole and checked first (bankaccounts/request_body.py): Django
# would read a malformed length or a short or chunked body as a 500 or as empty.
application = read_whole_body(get_wsgi_application())

from bank.accounts import close_bank_accounts, init_bank_accounts  # noqa: E402 - needs Django set up


def start_worker() -> None:
    """Construct this worker's application, right after the server forked it.

    Its Cassandra session opens on the first request that queries, in this
    process: a worker starts even while Cassandra is unreachable, and says so
    in its answers (500) instead of crash-looping.
    """
    init_bank_accounts()


def stop_worker() -> None:
    """Close this worker's application: its driver session and the session's threads."""
    close_bank_accounts()


def start_uwsgi_worker() -> None:
    start_worker()
    atexit.register(stop_worker)  # registered in the worker, so only it runs it


try:
    import uwsgi
    from uwsgidecorators import postfork
except ImportError:  # not running under uWSGI
    pass
else:
    if uwsgi.worker_id() == 0:  # imported by the master: construct after each fork
        postfork(start_uwsgi_worker)
    else:  # lazy-apps: imported by a worker, which is already forked
        start_uwsgi_worker()
