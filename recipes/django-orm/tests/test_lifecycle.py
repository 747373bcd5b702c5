"""Where the application is constructed: never in a server's master, once in each forked worker."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from django.db import connections

from bank.accounts import (
    DjangoBankAccounts,
    bank_accounts,
    close_bank_accounts,
    start_worker_process,
    stop_worker_process,
)
from bank.transactions import run_in_transaction
from bankaccounts.slot import ApplicationForkedError

FORK = multiprocessing.get_context("fork")


def test_importing_wsgi_constructs_nothing_and_connects_to_nothing(recipe_dir: Path, django_database: str) -> None:
    """What a prefork server's master does: import wsgi.py, then fork the workers."""
    script = (
        "import wsgi; from bank.accounts import slot; from django.db import connections; "
        "print(slot.is_initialised, [c.connection for c in connections.all()])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=recipe_dir,
        env={**os.environ, "DATABASE_URL": django_database},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False [None]"


def task_queue_worker(results: Connection) -> None:
    """A forked task-queue worker process: the start hook, one unit of work, the stop hook."""
    try:
        start_worker_process()  # e.g. connected to Celery's worker_process_init
        application = bank_accounts()
        account = run_in_transaction(lambda: application.open_account("Grace", "grace@example.com"))
        results.send((os.getpid(), application.instance_id, str(account.id)))
        stop_worker_process()  # e.g. connected to Celery's worker_process_shutdown
        connections.close_all()
    except BaseException as error:
        results.send(repr(error))
        raise


def test_the_task_queue_hook_constructs_each_worker_its_own_application(django_database: str) -> None:
    parent = bank_accounts()
    parent_account = run_in_transaction(lambda: parent.open_account("Ada", "ada@example.com"))
    parent_id = parent.instance_id
    # A prefork parent hands its children nothing open: close what it used.
    close_bank_accounts()
    connections.close_all()

    receiver, sender = FORK.Pipe(duplex=False)
    worker = FORK.Process(target=task_queue_worker, args=(sender,))
    worker.start()
    worker.join(60)

    assert worker.exitcode == 0
    child_pid, child_application, child_account = receiver.recv()
    assert child_pid != os.getpid()
    assert child_application != parent_id
    application = bank_accounts()
    assert application.get_account(parent_account.id).full_name == "Ada"
    assert application.get_account(child_account).full_name == "Grace"  # committed by the child


def forked_child_of_a_parent_with_an_application(results: Connection) -> None:
    try:
        start_worker_process()
    except ApplicationForkedError as error:
        results.send(str(error))
    else:
        results.send("constructed")


def test_a_worker_forked_from_a_parent_with_an_application_refuses_to_start(bank: DjangoBankAccounts) -> None:
    """The parent's application (and its connections) must not be used, nor replaced in silence."""
    receiver, sender = FORK.Pipe(duplex=False)
    worker = FORK.Process(target=forked_child_of_a_parent_with_an_application, args=(sender,))
    worker.start()
    worker.join(60)

    assert worker.exitcode == 0
    assert "Construct the application after fork" in receiver.recv()
    assert bank_accounts() is bank  # the parent's is untouched
