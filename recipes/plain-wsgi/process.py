"""What happens once per deployment, once per worker after the fork, and at exit.

Both servers call these from their hooks (``wsgi.py`` for uWSGI,
``gunicorn.conf.py`` for gunicorn), so the code that builds and closes the
application lives in one place.
"""

from __future__ import annotations

import os
import time

from eventsourcing.persistence import PersistenceError

from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.lifecycle import close_application, init_application

#: Workers never create tables: the schema exists before they start.
WORKER_ENV = {"CREATE_TABLE": "n"}


def create_schema(attempts: int = 3) -> None:
    """Create the event store's tables, if missing, with a short-lived application.

    Runs where ``wsgi.py`` is imported: once in the master, before any fork.
    The application is closed again at once, so no connection is inherited.
    Four workers creating tables at the same moment would race (PostgreSQL's
    ``CREATE TABLE IF NOT EXISTS`` is not safe against concurrent creators);
    if ``lazy-apps`` makes them do it anyway, the losers look again.
    """
    for attempt in range(1, attempts + 1):
        try:
            with construct_application(env={"CREATE_TABLE": "y"}):
                return
        except PersistenceError:
            if attempt == attempts:
                raise
            time.sleep(0.1 * attempt)


def start_worker() -> BankAccounts:
    """Construct this worker's application, with connections of its own."""
    # libpq labels every connection this process opens with its pid, so
    # pg_stat_activity shows which worker owns which server backend.
    os.environ["PGAPPNAME"] = f"bankaccounts-{os.getpid()}"
    return init_application(env=WORKER_ENV)


def stop_worker() -> None:
    """Close this worker's application: its connections end cleanly."""
    close_application()
