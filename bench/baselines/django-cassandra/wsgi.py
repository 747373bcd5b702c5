"""The baseline's WSGI entry point, ``wsgi:application``, as the recipe's uwsgi.ini names it.

As in the recipe: importing it sets Django up and opens nothing; each worker
opens its own Cassandra session right after the fork (uWSGI's ``postfork``)
and closes it at exit. The table exists already: ``python manage.py
create_ledger``, before the server starts.
"""

import atexit
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ledger_site.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

from ledger.accounts import close_ledger, init_ledger  # noqa: E402 - needs Django set up


def start_uwsgi_worker() -> None:
    init_ledger()
    atexit.register(close_ledger)  # registered in the worker, so only the worker runs it


try:
    import uwsgi
    from uwsgidecorators import postfork
except ImportError:  # not running under uWSGI
    pass
else:
    if uwsgi.worker_id() == 0:  # imported by the master: open a session after each fork
        postfork(start_uwsgi_worker)
    else:  # lazy-apps: imported by a worker, which is already forked
        start_uwsgi_worker()
