"""One ``BankAccounts`` per process, storing its events through Django's connection.

Where each process constructs it:

- **WSGI servers**: in each worker, right after the fork, from ``wsgi.py``
  (uWSGI's ``postfork``; gunicorn's ``post_worker_init`` in
  ``gunicorn.conf.py``). Never in the master, which only imports ``wsgi.py``.
- **Task-queue workers**: connect ``start_worker_process`` and
  ``stop_worker_process`` to the worker's per-process signals (for Celery,
  ``worker_process_init`` and ``worker_process_shutdown``).
- **Tests**: ``bank.testing.BankAccountsTestCase`` constructs one in ``setUp``
  and closes it in ``tearDown``; a pytest fixture can use it as a context
  manager, ``with init_bank_accounts() as application: yield application``,
  then empty the slot with ``close_bank_accounts()``.
- Anywhere else (``manage.py runserver``, a shell), ``bank_accounts()``
  constructs it on first use.

The slot that holds it refuses to hand a forked child its parent's instance
(see ``bankaccounts.lifecycle``).
"""

from __future__ import annotations

import os
from typing import Any

from django.db import connection

from bankaccounts.application import BankAccounts
from bankaccounts.slot import ApplicationSlot

#: The application's environment: events go to the ``eventstore`` Django app.
EVENTSOURCING_ENV = {"PERSISTENCE_MODULE": "eventstore.factory"}


class DjangoBankAccounts(BankAccounts):
    """The shared ``BankAccounts``, under its own name in a Django project."""

    # The shared application's name: it is recorded with every event, and
    # prefixes the application's environment variables (BANKACCOUNTS_...).
    name = "BankAccounts"


def construct_bank_accounts(**_: Any) -> DjangoBankAccounts:
    # retry=None: commands run inside a transaction the application does not
    # own. A write conflict must roll all of it back, so bank.transactions,
    # which owns it, retries the whole unit of work.
    return DjangoBankAccounts(env=EVENTSOURCING_ENV, retry=None)


slot: ApplicationSlot[DjangoBankAccounts] = ApplicationSlot(construct_bank_accounts)


def init_bank_accounts() -> DjangoBankAccounts:
    """Construct this process's application; raises if it has one already."""
    return slot.init()


def bank_accounts() -> DjangoBankAccounts:
    """This process's application, constructed on first use if no hook did it."""
    return slot.get_or_init()


def close_bank_accounts() -> None:
    """Close this process's application, if it has one, so another may be constructed."""
    slot.close()


def start_worker_process(**_: Any) -> None:
    """Task-queue hook: a new worker process starts (Celery: ``worker_process_init``)."""
    init_bank_accounts()


def stop_worker_process(**_: Any) -> None:
    """Task-queue hook: a worker process stops (Celery: ``worker_process_shutdown``)."""
    close_bank_accounts()


def worker_health() -> dict[str, Any]:
    """Which process ran a task (Celery's ``bank.health``, RQ's ``bank.jobs.health``),
    with which application and which database session: the tests' evidence of one
    application per worker process and of the connections it uses."""
    application = bank_accounts()
    backend = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    return {"pid": os.getpid(), "application": application.instance_id, "database_session": backend}
