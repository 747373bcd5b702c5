"""One ``BankAccounts`` per process, with its own Cassandra session, opened after the fork.

The application owns the driver's ``Cluster`` and ``Session`` (through
``eventsourcing_cassandra``): Django has no Cassandra connection of its own.
The driver's sessions must not cross a fork: they run threads (an event loop,
a scheduler) that a forked child does not have, so a child's query on an
inherited session never gets an answer. So each process constructs its own
application, and the session opens on its first query:

- **WSGI servers**: in each worker, right after the fork, from ``wsgi.py``
  (uWSGI's ``postfork``; gunicorn's ``post_worker_init`` in ``gunicorn.conf.py``);
  closed as the worker exits. Never in the master, which only imports
  ``wsgi.py``.
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

from typing import Any

from django.conf import settings

from bankaccounts.application import BankAccounts
from bankaccounts.readiness import READY_TIMEOUT_SECONDS, ReadinessProbe
from bankaccounts.slot import ApplicationSlot
from eventsourcing_cassandra.factory import CassandraFactory


def construct_bank_accounts(**_: Any) -> BankAccounts:
    # Read when constructed, so a test can point the process at another keyspace.
    # The application retries a write conflict itself (its default RetryPolicy):
    # each save is its own transaction in the store, and no outer transaction
    # holds anything else that would need rolling back.
    return BankAccounts(env=settings.EVENTSOURCING_ENV)


slot: ApplicationSlot[BankAccounts] = ApplicationSlot(construct_bank_accounts)


def init_bank_accounts() -> BankAccounts:
    """Construct this process's application; raises if it has one already."""
    return slot.init()


def bank_accounts() -> BankAccounts:
    """This process's application, constructed on first use if no hook did it."""
    return slot.get_or_init()


def close_bank_accounts() -> None:
    """Close this process's application (and its session), if any, so another may be constructed."""
    slot.close()


def start_worker_process(**_: Any) -> None:
    """Task-queue hook: a new worker process starts (Celery: ``worker_process_init``)."""
    init_bank_accounts()


def stop_worker_process(**_: Any) -> None:
    """Task-queue hook: a worker process stops (Celery: ``worker_process_shutdown``)."""
    close_bank_accounts()


def ask_cassandra() -> None:
    """``/ready``'s question: this process's session answers a trivial query."""
    factory = bank_accounts().factory
    assert isinstance(factory, CassandraFactory)
    factory.datastore.ping(READY_TIMEOUT_SECONDS)


#: Asks in a helper thread, so ``/ready`` answers within a second whatever Cassandra does.
readiness = ReadinessProbe(ask_cassandra)
