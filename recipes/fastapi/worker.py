"""Each worker process's application: constructed in the lifespan, closed at shutdown.

ASGI servers run the app's lifespan in every worker process, after the
worker exists (uvicorn spawns its workers, gunicorn forks its own): the
one place that is right under both, so no server hook is needed. The
schema is created there too, by whichever worker comes first.
"""

from __future__ import annotations

import logging
import os

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts, create_schema
from bankaccounts.lifecycle import close_application, get_or_init_application
from bankaccounts.web import store_unavailable

logger = logging.getLogger(__name__)


#: Whether this worker has seen the schema created (``start_worker``).
schema_created = False


def worker_application() -> BankAccounts:
    """This worker's application, for a request: constructed by ``start_worker()``, or
    here, by the first request after a database that was down at start came back
    (which creates the schema if it is missing: one try, no retries in a request)."""
    return get_or_init_application(env=SCHEMA_EXISTS if schema_created else {"CREATE_TABLE": "y"})


def start_worker() -> None:
    """Construct this worker's application, with connections of its own.

    A worker can start while the database is down (a server replaces a worker
    that died, during an outage). It starts anyway, without an application: its
    requests answer 503 until one finds the database back and constructs it.
    """
    global schema_created
    try:
        create_schema()  # if missing; workers starting together retry (bankaccounts.application)
        schema_created = True
        worker_application()
    except Exception as error:
        if not store_unavailable(error):
            raise
        logger.warning("worker %d starts without its application: the database is unavailable: %s", os.getpid(), error)


def stop_worker() -> None:
    """Close this worker's application: its connections end cleanly."""
    close_application()
