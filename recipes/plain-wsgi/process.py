"""What happens once per deployment, once per worker after the fork, and at exit.

Both servers call these from their hooks (``wsgi.py`` for uWSGI,
``gunicorn.conf.py`` for gunicorn), so the code that builds and closes the
application lives in one place.
"""

from __future__ import annotations

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts, create_schema
from bankaccounts.lifecycle import close_application, get_or_init_application, start_unless_store_unavailable

__all__ = ["create_schema", "start_worker", "stop_worker", "worker_application"]


def worker_application() -> BankAccounts:
    """This worker's application, for a request: constructed by ``start_worker()``,
    or here, by the first request after the database came back.

    The schema already exists: ``wsgi.py`` created it in the master.
    """
    return get_or_init_application(env=SCHEMA_EXISTS)


def start_worker() -> None:
    """Construct this worker's application, with connections of its own; during an
    outage, the worker starts without it (``start_unless_store_unavailable``)."""
    start_unless_store_unavailable(worker_application)


def stop_worker() -> None:
    """Close this worker's application: its connections end cleanly."""
    close_application()
