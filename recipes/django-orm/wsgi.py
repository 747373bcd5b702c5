"""The WSGI entry point that uwsgi.ini and gunicorn.conf.py name: ``wsgi:application``.

Both servers import this module once, in the master process, then fork the
workers. Importing it sets Django up and opens no database connection; the
event-sourced application is constructed in each worker, after the fork, by
``construct_in_worker()``: uWSGI calls it through ``postfork`` (below),
gunicorn from ``post_worker_init`` in gunicorn.conf.py.
"""

import atexit
import os

# Name the settings module before Django is imported.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application
from django.db import connections

from bankaccounts.request_body import read_whole_body

# Each body read whole and checked first (bankaccounts/request_body.py): Django
# would read a malformed length or a short or chunked body as a 500 or as empty.
application = read_whole_body(get_wsgi_application())

from bank.accounts import close_bank_accounts, init_bank_accounts  # noqa: E402 - needs Django set up


def construct_in_worker() -> None:
    """Construct this worker's application, right after the server forked it."""
    init_bank_accounts()


try:
    import uwsgi
    from uwsgidecorators import postfork
except ImportError:  # not running under uWSGI
    pass
else:
    if uwsgi.worker_id() == 0:  # imported by the master: construct after each fork
        postfork(construct_in_worker)
    else:  # lazy-apps: imported by a worker, which is already forked
        construct_in_worker()

# When a worker exits (atexit handlers run last registered, first called):
# close its application, then its database connections. In a master that
# never served a request, both find nothing to close.
atexit.register(connections.close_all)
atexit.register(close_bank_accounts)
