"""What happens once per deployment, once per worker after the fork, and at exit.

Both servers call these from their hooks (``wsgi.py`` for uWSGI,
``gunicorn.conf.py`` for gunicorn), so the code that builds and closes the
application lives in one place.
"""

from __future__ import annotations

import logging
import os

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts, create_schema
from bankaccounts.lifecycle import close_application, get_or_init_application
from bankaccounts.web import store_unavailable

__all__ = ["create_schema", "start_worker", "stop_worker", "worker_application"]

logger = logging.getLogger(__name__)


def worker_application() -> BankAccounts:
    """This worker's application, for a request: constructed by ``start_worker()``,
    or here, by the first request after the database came back.

    The schema already exists: ``wsgi.py`` created it in the master.
    """
    return get_or_init_application(env=SCHEMA_EXISTS)


def start_worker() -> None:
    """Construct this worker's application, with connections of its own.

    A worker can start while the database is down: the master replaces one
    that died, during an outage. It must start anyway, without an application
    (its requests answer 503 until one of them finds the database back and
    constructs it): gunicorn stops the whole server when a worker fails to
    boot, and uWSGI would leave the worker answering 500.
    """
    try:
        worker_application()
    except Exception as error:
        if not store_unavailable(error):
            raise
        logger.warning("worker %d starts without its application: the database is unavailable: %s", os.getpid(), error)


def stop_worker() -> None:
    """Close this worker's application: its connections end cleanly."""
    close_application()
