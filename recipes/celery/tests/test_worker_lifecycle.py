"""Where each pool constructs and closes its application, and what SIGTERM does."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

import pytest
from celery import Celery, group
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from celery_worker import Tasks

from cookbook_testing.databases import count_rows
from cookbook_testing.processes import STOP_BOUND_SECONDS, wait_for
from cookbook_testing.workers import CeleryWorker


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_pools_without_children_construct_one_application_in_the_main_process(
    pool: str, client: Celery, start_worker: Callable[..., CeleryWorker]
) -> None:
    worker = start_worker(pool=pool)
    tasks = Tasks(client, worker)
    reports = group(client.signature("health", queue=worker.queue) for _ in range(20)).apply_async().get(timeout=60)
    assert {report["pid"] for report in reports} == {worker.pid}
    assert len({report["application"] for report in reports}) == 1
    assert dict(worker.constructed()) == {worker.pid: reports[0]["application"]}
    account = tasks.call("open_account", "Ada", "ada@example.com")
    assert tasks.call("deposit", account["id"], 5)["balance"] == 5
    assert worker.stop(signal.SIGTERM) == 0
    assert dict(worker.closed()) == dict(worker.constructed())
    assert "Signal handler" not in worker.log(), "a signal handler raised (Celery logs it and goes on)"


def test_task_prerun_constructs_lazily_once_per_child(
    client: Celery, start_worker: Callable[..., CeleryWorker]
) -> None:
    worker = start_worker(extra_env={"APPLICATION_INIT": "task_prerun"})
    assert dict(worker.constructed()) == {}, "nothing is constructed before the first task"
    reports = group(client.signature("health", queue=worker.queue) for _ in range(40)).apply_async().get(timeout=60)
    by_pid = {report["pid"]: report["application"] for report in reports}
    assert len({(report["pid"], report["application"]) for report in reports}) == len(by_pid)
    assert set(by_pid) <= worker.child_pids()
    assert dict(worker.constructed()) == by_pid  # exactly the children that ran a task, once each
    assert worker.stop(signal.SIGTERM) == 0
    assert dict(worker.closed()) == by_pid


#: The deposits in flight when a process is killed in the checks below.
KILLED_BATCH = 200


def deposits_under_way(
    first: CeleryWorker, tasks: Tasks, events_table: str, count: int = KILLED_BATCH
) -> tuple[str, list[AsyncResult]]:
    """Open an account and send it ``count`` deposits of 3; return once some have landed."""
    account = tasks.call("open_account", "Ada", "ada@example.com")
    before = count_rows(first.env["DATABASE_URL"], events_table)
    results = [tasks.send("deposit", account["id"], 3) for _ in range(count)]
    # Progress read from the database, whatever the result backend.
    wait_for(
        lambda: count_rows(first.env["DATABASE_URL"], events_table) >= before + 40, 60, "some deposits to complete"
    )
    return account["id"], results


def test_sigterm_finishes_or_requeues_tasks_and_closes_every_application(
    client: Celery, start_worker: Callable[..., CeleryWorker], events_table: str
) -> None:
    first = start_worker()
    tasks = Tasks(client, first)
    account_id, results = deposits_under_way(first, tasks, events_table, count=300)

    assert first.stop(signal.SIGTERM, timeout=60) == 0  # warm shutdown
    assert dict(first.closed()) == dict(first.constructed())
    assert set(dict(first.constructed())) >= first.child_pids() | set(dict(first.closed()))

    # The messages it had not started went back to the queue: a new worker on
    # the same queue and database runs them, and every deposit lands once.
    second = start_worker(database_url=first.env["DATABASE_URL"], queue=first.queue)
    balances = [result.get(timeout=120)["balance"] for result in results]
    final = Tasks(client, second).call("get_account", account_id)
    # Exactly once: a deposit the first worker ran but had not acknowledged
    # when it stopped is delivered again, and its task id stops it applying twice.
    assert (final["balance"], final["version"]) == (300 * 3, 301)
    assert len(balances) == 300
    succeeded_first = set(re.findall(r"Task deposit\[([\w-]+)\] succeeded", first.log()))
    received_again = set(re.findall(r"Task deposit\[([\w-]+)\] received", second.log()))
    print(f"delivered again after they had run: {len(succeeded_first & received_again)} deposit(s)")


def assert_every_deposit_applied_once(tasks: Tasks, account_id: str, results: list[AsyncResult]) -> None:
    balances = [result.get(timeout=120)["balance"] for result in results]  # none failed
    assert len(balances) == KILLED_BATCH
    final = tasks.call("get_account", account_id)
    assert (final["balance"], final["version"]) == (KILLED_BATCH * 3, 1 + KILLED_BATCH)


@pytest.mark.logs_errors("a child killed mid-task: Celery logs its WorkerLostError with a traceback")
def test_a_task_whose_child_was_killed_runs_again_and_applies_once(
    client: Celery, start_worker: Callable[..., CeleryWorker], events_table: str
) -> None:
    """A prefork child SIGKILLed mid-task (out of memory, say): its message is handed back
    (task_reject_on_worker_lost) and run again; the deposit it had made, if any, counts once."""
    worker = start_worker()
    tasks = Tasks(client, worker)
    account_id, results = deposits_under_way(worker, tasks, events_table)
    victim = min(worker.child_pids())
    os.kill(victim, signal.SIGKILL)
    assert_every_deposit_applied_once(tasks, account_id, results)
    # The pool notices a dead child in its next round of maintenance, which may come after the last result.
    death = f"pid:{victim} exited with 'signal 9 (SIGKILL)'"
    wait_for(lambda: death in worker.log(), 30, "the worker to log its child's death")
    lost = re.findall(r"WorkerLostError\(.*?\)", worker.log())
    print(f"celery: a child killed mid-batch; tasks it lost, run again: {len(lost)}")


def test_the_tasks_of_a_killed_worker_run_again_on_another_and_apply_once(
    client: Celery, start_worker: Callable[..., CeleryWorker], events_table: str
) -> None:
    """The whole worker SIGKILLed (its machine lost): the messages it had taken come back to
    the queue, on Redis once their visibility timeout has passed, and another worker runs them.

    On Redis a message can also be lost outright: kombu takes it from the queue, then records
    it as unacknowledged, in two steps, and a kill between them loses it. So the client does
    what a client of a queue must: it sends a task it has heard nothing of again, with the same
    task id, which keeps the deposit from being made twice."""
    quick = {"CELERY_VISIBILITY_TIMEOUT": "5"}  # the recipe's default is 60 s
    first = start_worker(extra_env=quick)
    tasks = Tasks(client, first)
    account_id, results = deposits_under_way(first, tasks, events_table)
    first.kill()  # SIGKILL to the main process and its children at once
    first.wait_until_gone(STOP_BOUND_SECONDS, "the killed worker's processes")
    second = start_worker(database_url=first.env["DATABASE_URL"], queue=first.queue, extra_env=quick)

    patience = 60  # seconds: the visibility timeout and the sweeps that restore, many times over
    deadline = time.monotonic() + patience
    unheard = []
    for result in results:  # get(), not ready(): RabbitMQ's results (rpc://) arrive only as they are read
        try:
            result.get(timeout=max(0.1, deadline - time.monotonic()))
        except CeleryTimeoutError:
            unheard.append(result)
    # At most the one message the main process was taking at the kill; the others came back.
    assert len(unheard) <= 1, f"{len(unheard)} deposits were not delivered again"
    for result in unheard:
        client.send_task("deposit", args=[account_id, 3], task_id=result.id, queue=second.queue)
    assert_every_deposit_applied_once(Tasks(client, second), account_id, results)
    print(f"celery: a worker killed mid-batch; deposits sent again after {patience}s unheard: {len(unheard)}")


#: When the SIGTERM comes: as soon as the process exists (Python is importing the
#: app), once the first application is constructed (in a prefork child, or in
#: the main process for the other pools), and once it says it is ready for tasks.
START_MOMENTS: dict[str, Callable[[CeleryWorker], bool] | None] = {
    "importing": lambda worker: True,
    "starting": lambda worker: bool(worker.constructed()),
    "ready": None,
}


@pytest.mark.parametrize("moment", START_MOMENTS)
@pytest.mark.parametrize("pool", ["prefork", "solo", "threads"])
def test_sigterm_right_after_start_stops_within_the_bound(
    pool: str, moment: str, start_worker: Callable[..., CeleryWorker]
) -> None:
    """An orchestrator may stop a worker it has only just started: it stops, cleanly."""
    worker = start_worker(pool=pool, until=START_MOMENTS[moment])
    started = time.monotonic()
    returncode = worker.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS)
    seconds = time.monotonic() - started
    # Before Celery installs its handlers (while Python imports the app), SIGTERM's
    # default action ends the process at once: nothing was constructed to close.
    assert returncode == 0 or (returncode == -signal.SIGTERM and not worker.constructed()), returncode
    assert sorted(worker.closed()) == sorted(worker.constructed())
    # Whatever it started (pool children; Python's platform module runs `uname -p`) ends too.
    remaining = STOP_BOUND_SECONDS - (time.monotonic() - started)
    worker.wait_until_gone(remaining)
    print(f"celery {pool} {moment}: stopped in {seconds:.2f}s with {returncode}")
