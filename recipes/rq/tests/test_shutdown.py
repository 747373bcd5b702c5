"""Warm shutdown (SIGTERM): the job in hand finishes, the others wait in the queue, none is lost."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
from rq import Queue
from rq.job import JobStatus
from rq_worker import WORKER_CLASSES, RQWorker

from client import call, enqueue, result
from cookbook_testing.databases import count_rows
from cookbook_testing.processes import STOP_BOUND_SECONDS, wait_for

DEPOSITS = 120  # for the test under load; it stops the first worker after 20


def nothing_stranded(queue: Queue) -> None:
    """No job taken and left: none between the queue and a start, none started and abandoned, none failed."""
    assert queue.intermediate_queue.get_job_ids() == [], "a job was taken from the queue and never started"
    assert queue.started_job_registry.get_job_ids() == []
    assert queue.failed_job_registry.get_job_ids() == []


@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_sigterm_during_a_job_lets_it_finish_and_leaves_the_rest_queued(
    worker_class: str, start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue]
) -> None:
    worker = start_worker(worker_class=f"pausing_workers.{worker_class}PausingInJobs")
    queue = queue_of(worker)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    running, *waiting = [enqueue(queue, "deposit", account["id"], 5) for _ in range(4)]
    wait_for(lambda: f"started job {running.id}; pausing" in worker.log(), 30, "the deposit to start")

    assert worker.stop(signal.SIGTERM, timeout=30) == 0  # warm: waits for the job
    assert result(running, timeout=1)["balance"] == 5
    assert [job.get_status() for job in waiting] == [JobStatus.QUEUED] * 3
    nothing_stranded(queue)

    # The jobs it left are in the queue, for the next worker.
    second = start_worker(worker_class=worker_class, queue=worker.queue, database_url=worker.env["DATABASE_URL"])
    assert [result(job)["balance"] for job in waiting] == [10, 15, 20]
    assert call(queue_of(second), "get_account", account["id"])["version"] == 5


def test_sigterm_between_taking_a_job_and_starting_it_loses_nothing(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue]
) -> None:
    worker = start_worker(worker_class="pausing_workers.PausingWorker")
    queue = queue_of(worker)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    taken = enqueue(queue, "deposit", account["id"], 5)
    wait_for(lambda: f"took job {taken.id}; pausing" in worker.log(), 30, "the worker to take the deposit")

    assert worker.stop(signal.SIGTERM, timeout=30) == 0
    assert result(taken, timeout=1)["balance"] == 5  # it ran, then the worker stopped
    nothing_stranded(queue)


def test_rqs_own_handling_strands_that_job(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue]
) -> None:
    """Why workers.py replaces two of RQ's methods: without them, the same signal loses the job."""
    worker = start_worker(worker_class="pausing_workers.PausingRQShutdownWorker")
    queue = queue_of(worker)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    taken = enqueue(queue, "deposit", account["id"], 5)
    wait_for(lambda: f"took job {taken.id}; pausing" in worker.log(), 30, "the worker to take the deposit")

    assert worker.stop(signal.SIGTERM, timeout=30) == 0
    # Out of the queue, never started: no worker will take it. RQ's maintenance
    # fails it as "stuck in intermediate queue", a minute or more later.
    assert queue.intermediate_queue.get_job_ids() == [taken.id], "RQ no longer strands it: see workers.py"
    assert taken.id not in queue.job_ids
    assert (taken.get_status(), taken.latest_result()) == (JobStatus.QUEUED, None)


def test_sigterm_under_load_loses_and_repeats_nothing(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue], events_table: str
) -> None:
    first = start_worker()
    queue = queue_of(first)
    database_url = first.env["DATABASE_URL"]
    account = call(queue, "open_account", "Ada", "ada@example.com")
    before = count_rows(database_url, events_table)
    jobs = [enqueue(queue, "deposit", account["id"], 3) for _ in range(DEPOSITS)]
    # Each deposit records two events: the deposit, and the record of its command id.
    wait_for(lambda: count_rows(database_url, events_table) >= before + 2 * 20, 60, "20 deposits to complete")

    assert first.stop(signal.SIGTERM, timeout=30) == 0
    statuses = [job.get_status() for job in jobs]
    assert set(statuses) <= {JobStatus.FINISHED, JobStatus.QUEUED}
    nothing_stranded(queue)
    assert {JobStatus.FINISHED, JobStatus.QUEUED} <= set(statuses), "stopped part-way"

    start_worker(queue=first.queue, database_url=database_url)
    assert len([result(job) for job in jobs]) == DEPOSITS
    final = call(queue, "get_account", account["id"])
    assert (final["balance"], final["version"]) == (DEPOSITS * 3, DEPOSITS + 1)
    assert all(len(job.results()) == 1 for job in jobs), "one run each"
    print(f"stopped after {statuses.count(JobStatus.FINISHED)} of {DEPOSITS} deposits; the second worker ran the rest")


#: When the SIGTERM comes: as soon as the process exists (Python is importing),
#: once it has begun to start (it logged its first line: RQ's own handlers are
#: not yet certain to be in place), and once every worker listens on its queue.
START_MOMENTS: dict[str, Callable[[RQWorker], bool] | None] = {
    "importing": lambda worker: True,
    "starting": lambda worker: bool(worker.log().strip()),
    "listening": None,
}


@pytest.mark.parametrize("moment", START_MOMENTS)
@pytest.mark.parametrize(("worker_class", "pool"), [(name, 0) for name in WORKER_CLASSES] + [("Worker", 2)])
def test_sigterm_right_after_start_stops_within_the_bound(
    worker_class: str, pool: int, moment: str, start_worker: Callable[..., RQWorker]
) -> None:
    """An orchestrator may stop a worker it has only just started: it stops, cleanly."""
    worker = start_worker(worker_class=worker_class, pool=pool, until=START_MOMENTS[moment])
    started = time.monotonic()
    returncode = worker.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS)
    # Before RQ installs its handlers (while Python imports), SIGTERM's default
    # action ends the process at once: nothing was constructed to close.
    assert returncode == 0 or (returncode == -signal.SIGTERM and not worker.constructed()), returncode
    assert sorted(worker.closed()) == sorted(worker.constructed())
    # A pool ended that way leaves workers it had started; they must notice and stop.
    remaining = STOP_BOUND_SECONDS - (time.monotonic() - started)
    worker.wait_until_gone(remaining)
    seconds = time.monotonic() - started
    print(f"rq {worker_class} pool={pool} {moment}: stopped in {seconds:.2f}s with {returncode}")


def test_a_pools_workers_stop_when_the_pool_is_gone(start_worker: Callable[..., RQWorker]) -> None:
    """The pool may die without stopping its workers (a SIGTERM while it starts them,
    before RQ's handler exists, ends it at once; so does SIGKILL): they stop by themselves."""
    pool = start_worker(worker_class="Worker", pool=2)
    workers = pool.child_pids()
    pool.stop(signal.SIGKILL)
    started = time.monotonic()
    pool.wait_until_gone(STOP_BOUND_SECONDS, "the pool's workers")
    assert pool.log().count("is gone; stopping") == 2, workers
    print(f"rq pool=2 orphaned: workers stopped in {time.monotonic() - started:.2f}s")
