"""One ``BankAccounts`` per worker process, wherever the pool runs tasks.

Which signal fires where:

================================  =======================  =========================
signal                            prefork pool             solo / threads pools
================================  =======================  =========================
``worker_init``                   main process, before     main process, before
                                  the children fork        logging is set up
``worker_process_init``           each child, after        solo: the main process,
                                  its fork                 as the pool is created,
                                                           before the worker's signal
                                                           handlers; threads: never
``worker_ready``                  main process             main process, before the
                                                           first task (tasks run here)
``task_prerun``                   the child running        the main process (in the
                                  the task                 task's thread)
``worker_process_shutdown``       each child, as it        never
                                  exits
``worker_shutdown``               main process             main process
================================  =======================  =========================

A process can start while the database is down (the pool replaces a child
that died, during an outage): it then starts without its application
(``start_unless_store_unavailable``), and its first task constructs it
(``application()``), or finds the store still down and runs again later.

So: the schema is created in ``worker_init``, by a short-lived application
closed before the pool forks; prefork children construct theirs in
``worker_process_init``; the other pools construct one in the main process
in ``worker_ready``, once the worker's SIGTERM handler is in place (solo's
``worker_process_init`` comes too early: a SIGTERM then would end the process
before it could close the application). With ``APPLICATION_INIT=task_prerun``
the application is instead constructed lazily, by the first task each
process runs.
"""

from __future__ import annotations

import os
from typing import Any

from celery import signals
from celery.concurrency import get_implementation
from celery.concurrency.prefork import TaskPool as PreforkPool

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts, create_schema
from bankaccounts.lifecycle import (
    close_application,
    get_or_init_application,
    init_application,
    start_unless_store_unavailable,
)

#: "worker_process_init" (the default) or "task_prerun" (lazy).
APPLICATION_INIT = os.environ.get("APPLICATION_INIT") or "worker_process_init"
if APPLICATION_INIT not in ("worker_process_init", "task_prerun"):
    msg = f"APPLICATION_INIT must be worker_process_init or task_prerun, not {APPLICATION_INIT!r}"
    raise ValueError(msg)


def _runs_tasks_in_children(worker: Any) -> bool:
    return issubclass(get_implementation(worker.pool_cls), PreforkPool)


#: The worker's main process, set in ``worker_init``; prefork children have other pids.
main_pid: int | None = None


def application() -> BankAccounts:
    """This process's application, for a task: constructed here if the process started
    without it (during an outage)."""
    return get_or_init_application(env=SCHEMA_EXISTS)


def construct() -> None:
    init_application(env=SCHEMA_EXISTS)


@signals.worker_init.connect
def prepare_worker(**kwargs: Any) -> None:
    global main_pid
    main_pid = os.getpid()
    create_schema()


@signals.worker_ready.connect
def start_main_process(sender: Any, **kwargs: Any) -> None:
    # sender is the consumer; its controller knows the pool.
    if APPLICATION_INIT == "worker_process_init" and not _runs_tasks_in_children(sender.controller):
        start_unless_store_unavailable(construct)


@signals.worker_process_init.connect
def start_child(**kwargs: Any) -> None:
    # The solo pool sends this in the main process; worker_ready constructs there.
    if APPLICATION_INIT == "worker_process_init" and os.getpid() != main_pid:
        start_unless_store_unavailable(construct)


@signals.task_prerun.connect
def construct_lazily(**kwargs: Any) -> None:
    if APPLICATION_INIT == "task_prerun":
        application()


@signals.worker_process_shutdown.connect
def stop_child(**kwargs: Any) -> None:
    close_application()


@signals.worker_shutdown.connect
def stop_worker(**kwargs: Any) -> None:
    close_application()
