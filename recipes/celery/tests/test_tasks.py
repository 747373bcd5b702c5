"""Real ``celery -A tasks worker --pool prefork --concurrency 4`` processes; no eager mode."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery, group
from celery_worker import Tasks

from bankaccounts.domain import (
    AccountNotFoundError,
    InsufficientFundsError,
    InvalidAccountDetailsError,
    InvalidAmountError,
    TransferToSameAccountError,
)
from cookbook_testing.databases import count_rows
from cookbook_testing.faults import FaultProxy
from cookbook_testing.processes import wait_for
from cookbook_testing.standalone import DEPOSITS
from cookbook_testing.workers import CeleryWorker

ACCOUNT_FIELDS = {"id", "full_name", "email_address", "balance", "overdraft_limit", "is_closed", "version"}


def test_commands_return_accounts_as_json(tasks: Tasks) -> None:
    ada = tasks.call("open_account", "Ada Lovelace", "ada@example.com")
    grace = tasks.call("open_account", "Grace Hopper", "grace@example.com")
    assert isinstance(ada, dict)
    assert set(ada) == ACCOUNT_FIELDS
    assert tasks.call("deposit", ada["id"], 1000)["balance"] == 1000
    assert tasks.call("withdraw", ada["id"], 250)["balance"] == 750
    assert tasks.call("transfer", ada["id"], grace["id"], 50) == {**ada, "balance": 700, "version": 4}
    assert tasks.call("get_account", grace["id"])["balance"] == 50


def test_concurrent_deposits_on_one_account(tasks: Tasks) -> None:
    account = tasks.call("open_account", "Ada", "ada@example.com")
    signatures = [
        tasks.client.signature("deposit", args=[account["id"], 7], queue=tasks.worker.queue) for _ in range(DEPOSITS)
    ]
    results = group(signatures).apply_async().get(timeout=300)
    assert len(results) == DEPOSITS
    final = tasks.call("get_account", account["id"])
    assert (final["balance"], final["version"]) == (DEPOSITS * 7, DEPOSITS + 1)
    assert sorted(result["version"] for result in results) == list(range(2, DEPOSITS + 2))


def test_each_child_has_exactly_one_application_constructed_after_fork(tasks: Tasks) -> None:
    applications: dict[int, set[str]] = defaultdict(set)
    # Batches of 80 until two children have answered (at most 10, or 2 minutes): a
    # child quick enough can take a whole batch, since the pool hands each task to
    # whichever child is free, not to each in turn.
    deadline = time.monotonic() + 120
    for _ in range(10):
        reports = (
            group(tasks.client.signature("health", queue=tasks.worker.queue) for _ in range(80))
            .apply_async()
            .get(timeout=120)
        )
        for report in reports:
            assert set(report) == {"pid", "application", "store"}
            applications[report["pid"]].add(report["application"])
        if len(applications) >= 2 or time.monotonic() > deadline:
            break
    children = tasks.worker.child_pids()
    assert len(applications) >= 2, applications
    assert set(applications) <= children
    assert all(len(ids) == 1 for ids in applications.values()), applications
    constructed = dict(tasks.worker.constructed())
    assert tasks.worker.pid not in constructed, "an application was constructed in the parent"
    assert set(constructed) == children  # worker_process_init: every child, at start
    assert {pid: ids.pop() for pid, ids in applications.items()} == {pid: constructed[pid] for pid in applications}


BAD_CALLS: list[tuple[str, list[Any], type[Exception]]] = [
    ("deposit", [str(uuid.uuid4()), 10], AccountNotFoundError),
    ("deposit", ["not-a-uuid", 10], AccountNotFoundError),
    ("deposit", ["ACCOUNT", 0], InvalidAmountError),
    ("deposit", ["ACCOUNT", -5], InvalidAmountError),
    ("deposit", ["ACCOUNT", True], InvalidAmountError),
    ("deposit", ["ACCOUNT", 1.5], InvalidAmountError),
    ("deposit", ["ACCOUNT", "10"], InvalidAmountError),
    ("withdraw", ["ACCOUNT", 101], InsufficientFundsError),
    ("transfer", ["ACCOUNT", "ACCOUNT", 10], TransferToSameAccountError),
    ("transfer", ["ACCOUNT", str(uuid.uuid4()), 10], AccountNotFoundError),
    ("open_account", ["", "ada@example.com"], InvalidAccountDetailsError),
    ("open_account", ["Ada", "no-at-sign"], InvalidAccountDetailsError),
]


@pytest.mark.logs_errors("each refused task fails, and Celery logs a failure with its traceback")
def test_bad_arguments_fail_clearly_and_change_nothing(
    tasks: Tasks, make_database_url: Callable[[], str], start_worker: Callable[..., Any], events_table: str
) -> None:
    account = tasks.call("open_account", "Ada", "ada@example.com")
    tasks.call("deposit", account["id"], 100)
    database_url = tasks.worker.env["DATABASE_URL"]
    before = count_rows(database_url, events_table)
    for name, args, error in BAD_CALLS:
        result = tasks.send(name, *[account["id"] if arg == "ACCOUNT" else arg for arg in args])
        with pytest.raises(error) as raised:
            result.get(timeout=30)  # fails at once: not hung, not retried
        assert str(raised.value), name
        assert result.state == "FAILURE"
    assert count_rows(database_url, events_table) == before
    assert tasks.call("get_account", account["id"])["balance"] == 100


def test_tasks_are_registered_under_their_exact_names(tasks: Tasks) -> None:
    replies = tasks.client.control.inspect(destination=[f"{tasks.worker.queue}@{_hostname()}"], timeout=10).registered()
    assert replies, "the worker did not answer"
    (registered,) = replies.values()
    assert {"open_account", "deposit", "withdraw", "transfer", "get_account", "health"} <= set(registered)


def _hostname() -> str:
    import socket

    return socket.gethostname()


def test_a_message_stays_taken_longer_than_a_task_may_run() -> None:
    """A visibility timeout below the hard time limit would run a slow task twice at once."""
    from celery_app import app

    conf = app.conf
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit > conf.task_soft_time_limit
    assert conf.task_acks_late and conf.task_reject_on_worker_lost


@pytest.mark.requires_postgresql
def test_a_write_that_finds_the_database_down_runs_again_and_applies_once(
    client: Celery, start_worker: Callable[..., CeleryWorker], database_behind_a_fault_proxy: FaultProxy
) -> None:
    """The task sends itself again (``tasks.STORE_RETRY_COUNTDOWN``) while the database is
    unreachable, with the same task id, and applies once when it is back."""
    database = database_behind_a_fault_proxy
    tasks = Tasks(client, start_worker(database_url=database.url))
    account = tasks.call("open_account", "Ada", "ada@example.com")
    database.go_down()
    result = tasks.send("deposit", account["id"], 7)
    wait_for(lambda: f"Task deposit[{result.id}] retry" in tasks.worker.log(), 60, "the task to be retried")
    database.come_back()
    assert result.get(timeout=60)["balance"] == 7
    assert tasks.call("get_account", account["id"])["version"] == 2


@pytest.mark.requires_postgresql
@pytest.mark.logs_errors("a child killed on purpose: the pool logs its death")
def test_a_child_started_while_the_database_is_down_gets_its_application_from_its_first_task(
    client: Celery, start_worker: Callable[..., CeleryWorker], database_behind_a_fault_proxy: FaultProxy
) -> None:
    """The pool replaces a child that died during an outage: the new child cannot build its
    application, starts without it (and says so), and its first task, once the database is
    back, builds it. (Without that, the child would serve on with none, and fail every task.)"""
    database = database_behind_a_fault_proxy
    worker = start_worker(database_url=database.url, concurrency=1)
    tasks = Tasks(client, worker)
    account = tasks.call("open_account", "Ada", "ada@example.com")
    database.go_down()
    (victim,) = worker.child_pids()
    os.kill(victim, signal.SIGKILL)
    started_without = "starts without its application: the database is unavailable"
    wait_for(lambda: started_without in worker.log(), 60, "a new child, started without its application")
    database.come_back()
    assert tasks.call("deposit", account["id"], 7)["balance"] == 7
