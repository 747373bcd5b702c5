"""Each worker process's application: constructed in the lifespan, closed at shutdown.

ASGI servers run the app's lifespan in every worker process, after the
worker exists (uvicorn spawns its workers, gunicorn and Granian fork
theirs): the one place that is right under all three, so no server hook is
needed. The schema is created there too, by whichever worker comes first.
"""

from __future__ import annotations

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts, create_schema
from bankaccounts.lifecycle import close_application, get_or_init_application, start_unless_store_unavailable

#: Whether this worker has seen the schema created (``start_worker``).
schema_created = False


def worker_application() -> BankAccounts:
    """This worker's application, for a request: constructed by ``start_worker()``, or
    here, by the first request after a database that was down at start came back
    (which creates the schema if it is missing: one try, no retries in a request)."""
    return get_or_init_application(env=SCHEMA_EXISTS if schema_created else {"CREATE_TABLE": "y"})


def create_schema_and_application() -> None:
    global schema_created  # set once per process, before any request
    create_schema()  # if missing; workers starting together retry (bankaccounts.application)
    schema_created = True
    worker_application()


def start_worker() -> None:
    """Create the schema and construct this worker's application, with connections of its
    own; during an outage, the worker starts without it (``start_unless_store_unavailable``)."""
    start_unless_store_unavailable(create_schema_and_application)


def stop_worker() -> None:
    """Close this worker's application: its connections end cleanly."""
    close_application()
