"""One application per process: construct it, get it, close it.

An ``eventsourcing`` application owns database connections. Two instances in
one process waste connections and caches; one instance shared by two
processes (constructed in a parent, used in a child after ``fork()``) is
worse: both processes talk over the same sockets and corrupt each other's
conversations with the database. So:

- ``init_application()`` constructs the process's instance and refuses to run
  twice;
- ``get_application()`` returns it, and refuses if there is none;
- ``get_or_init_application()`` constructs it on first use, exactly once even
  when many threads ask at the same moment;
- ``close_application()`` closes it and clears the slot, so that a test suite
  can construct a fresh one for every test.

The slot itself (``bankaccounts.slot``) knows nothing of bank accounts, and
refuses a process forked from the one that constructed the application. This
module is the example's only part of it: which application the slot holds.
In a project of your own, give ``ApplicationSlot`` your application's
constructor instead of ``construct_application``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.slot import ApplicationSlot
from bankaccounts.unavailable import store_unavailable

logger = logging.getLogger(__name__)


#: The process's ``BankAccounts`` application.
slot: ApplicationSlot[BankAccounts] = ApplicationSlot(construct_application, logger)


def init_application(**kwargs: Any) -> BankAccounts:
    """Construct this process's ``BankAccounts``; see ``construct_application``."""
    return slot.init(**kwargs)


def get_application() -> BankAccounts:
    return slot.get()


def get_or_init_application(**kwargs: Any) -> BankAccounts:
    """Lazily initialising getter; ``kwargs`` are used only by the call that constructs."""
    return slot.get_or_init(**kwargs)


def close_application() -> None:
    slot.close()


def start_unless_store_unavailable(construct: Callable[[], object]) -> None:
    """Start a worker: ``construct`` builds its application, with connections of its own.

    A worker can start while the database is down: its server replaces one that
    died, during an outage. It must start anyway, without an application (its
    requests answer 503 until one of them finds the database back and constructs
    it): gunicorn stops the whole server when a worker fails to boot, and uWSGI
    would leave the worker answering 500. So a store that is unavailable just now
    is logged, not raised; any other error is raised.
    """
    try:
        construct()
    except Exception as error:
        if not store_unavailable(error):
            raise
        logger.warning("worker %d starts without its application: the database is unavailable: %s", os.getpid(), error)
