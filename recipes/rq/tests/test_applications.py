"""Where each worker class constructs its application, and whose database sessions are whose."""

from __future__ import annotations

import signal
import threading
from collections import defaultdict
from collections.abc import Callable

import pytest
from rq import Queue
from rq_worker import WORKER_CLASSES, RQWorker

from client import JobFailedError, call, enqueue, result
from cookbook_testing.databases import count_rows, server_backends
from cookbook_testing.processes import wait_for

JOBS = {"Worker": 20, "SimpleWorker": 20, "SpawnWorker": 6}  # a new interpreter per job is slow


@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_one_application_per_process_and_never_one_from_the_worker_in_a_horse(
    worker_class: str, start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue], expected_store: str
) -> None:
    worker = start_worker(worker_class=worker_class)
    queue = queue_of(worker)
    assert worker.constructed() == [], "nothing is constructed before the first job"
    reports = [result(job) for job in [enqueue(queue, "health") for _ in range(JOBS[worker_class])]]
    applications: dict[int, set[str]] = defaultdict(set)
    for report in reports:
        assert set(report) == {"pid", "application", "store"}
        assert report["store"] == expected_store
        applications[report["pid"]].add(report["application"])
    assert all(len(ids) == 1 for ids in applications.values()), applications
    ran = {(pid, ids.pop()) for pid, ids in applications.items()}
    if worker_class == "SimpleWorker":
        # Every job in the worker process, on the application its first job constructed.
        assert ran == set(worker.constructed()) == {(worker.pid, reports[0]["application"])}
    else:
        # A process per job, and an application per process, constructed there.
        assert len(ran) == len(reports)
        assert worker.pid not in applications, "a job ran in the worker process"
        assert ran == set(worker.constructed())
        # Each horse closes its application before it exits (just after it stores the result).
        wait_for(lambda: sorted(worker.closed()) == sorted(worker.constructed()), 10, "every horse to close")
    assert worker.stop(signal.SIGTERM) == 0
    assert sorted(worker.closed()) == sorted(worker.constructed())


@pytest.mark.logs_errors("the anti-pattern: every job fails, and RQ logs each failure with its traceback")
def test_an_application_constructed_before_the_fork_fails_every_job_and_writes_nothing(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue], events_table: str
) -> None:
    worker = start_worker(worker_class="antipattern_workers.ConstructedBeforeForkWorker")
    queue = queue_of(worker)
    # It constructs its application just after it starts listening.
    ((owner, _),) = wait_for(worker.constructed, 10, "the worker process to construct its application")
    assert owner == worker.pid
    jobs = [enqueue(queue, "open_account", "Ada", "ada@example.com") for _ in range(3)] + [enqueue(queue, "health")]
    refused = rf"ApplicationForkedError: the application was constructed in process {worker.pid} and is being used in"
    for job in jobs:
        with pytest.raises(JobFailedError, match=refused):
            result(job, timeout=30)
    assert sorted(queue.failed_job_registry.get_job_ids()) == sorted(job.id for job in jobs)
    assert count_rows(worker.env["DATABASE_URL"], events_table) == 0


@pytest.mark.requires_postgresql
@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_each_database_session_belongs_to_the_process_that_runs_the_jobs(
    worker_class: str,
    start_worker: Callable[..., RQWorker],
    queue_of: Callable[..., Queue],
    database_url: str,
) -> None:
    """pg_stat_activity names each session after the process that opened it (bankaccounts-<pid>)."""

    def ours() -> set[str]:
        return {name for _, name in server_backends(database_url) if name.startswith("bankaccounts-")}

    worker = start_worker(worker_class=worker_class, database_url=database_url)
    assert ours() == set(), "the worker process keeps no session once it has created the schema"
    queue = queue_of(worker)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    # Watch the sessions while deposits run (a horse's lives as long as its job).
    seen: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(ours())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        jobs = [enqueue(queue, "deposit", account["id"], 1) for _ in range(JOBS[worker_class])]
        assert [result(job)["balance"] for job in jobs][-1] == JOBS[worker_class]
    finally:
        done.set()
        watcher.join(10)
    job_processes = {f"bankaccounts-{pid}" for pid, _ in worker.constructed()}
    assert seen, "no session was seen while the deposits ran"
    assert seen <= job_processes, "a session was opened by a process that runs no jobs"
    if worker_class == "SimpleWorker":
        assert seen == {f"bankaccounts-{worker.pid}"}
        assert ours() == seen, "the worker keeps its session between jobs"
    else:
        assert f"bankaccounts-{worker.pid}" not in seen
        # Each horse said goodbye to the server before it exited: no session outlives its job.
        wait_for(lambda: ours() == set(), 10, "the horses' sessions to end")
    assert worker.stop(signal.SIGTERM) == 0
    wait_for(lambda: ours() == set(), 10, "every session to end once the worker has stopped")
