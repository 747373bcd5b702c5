"""Bad jobs fail once, clearly, into RQ's failed registry, and change nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from rq.job import JobStatus
from rq.serializers import DefaultSerializer
from rq_worker import RECIPE_DIR, RQWorker

from client import JobFailedError, call, enqueue, result
from cookbook_testing.databases import count_rows
from cookbook_testing.processes import wait_for
from workers import HORSE_DEATH_RETRIES

ACCOUNT = "ACCOUNT"  # replaced by the test account's id
BAD_CALLS: list[tuple[str, list[Any], str]] = [
    ("deposit", [str(uuid.uuid4()), 10], "AccountNotFoundError: account"),
    ("deposit", ["not-a-uuid", 10], "AccountNotFoundError: account 'not-a-uuid' not found"),
    ("deposit", [ACCOUNT, 0], "InvalidAmountError: amount must be an integer"),
    ("deposit", [ACCOUNT, -5], "InvalidAmountError"),
    ("deposit", [ACCOUNT, True], "InvalidAmountError"),
    ("deposit", [ACCOUNT, 1.5], "InvalidAmountError"),
    ("deposit", [ACCOUNT, "10"], "InvalidAmountError"),
    ("deposit", [ACCOUNT], "TypeError: deposit() missing 1 required positional argument: 'amount'"),
    ("withdraw", [ACCOUNT, 101], "InsufficientFundsError"),
    ("transfer", [ACCOUNT, ACCOUNT, 10], "TransferToSameAccountError"),
    ("transfer", [ACCOUNT, str(uuid.uuid4()), 10], "AccountNotFoundError"),
    ("open_account", ["", "ada@example.com"], "InvalidAccountDetailsError: full_name must be"),
    ("open_account", ["Ada", "no-at-sign"], "InvalidAccountDetailsError: email_address must be"),
    ("close_everything", [], "UnknownJobError: 'jobs.close_everything' is not a job of these workers"),
]


@pytest.mark.logs_errors("bad jobs fail, and RQ logs each failure with its traceback")
def test_bad_jobs_fail_once_into_the_failed_registry_and_change_nothing(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue], events_table: str
) -> None:
    worker = start_worker()  # RQ's default: a work horse per job
    queue = queue_of(worker)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    call(queue, "deposit", account["id"], 100)
    before = count_rows(worker.env["DATABASE_URL"], events_table)
    jobs = [
        (enqueue(queue, name, *[account["id"] if arg == ACCOUNT else arg for arg in args]), message)
        for name, args, message in BAD_CALLS
    ]
    for job, message in jobs:
        with pytest.raises(JobFailedError) as failed:
            result(job, timeout=30)  # fails at once: not hung, not retried
        assert message in str(failed.value), failed.value.traceback
        assert job.get_status() == JobStatus.FAILED
        assert len(job.results()) == 1, "run once: RQ retries only jobs enqueued with retry="
    assert sorted(queue.failed_job_registry.get_job_ids()) == sorted(job.id for job, _ in jobs)
    assert (queue.count, queue.scheduled_job_registry.count) == (0, 0), "nothing is waiting to run again"
    assert count_rows(worker.env["DATABASE_URL"], events_table) == before
    assert call(queue, "get_account", account["id"])["balance"] == 100


def test_a_job_whose_horse_died_after_its_commit_runs_again_and_changes_nothing(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue], tmp_path: Path
) -> None:
    """The horse dies after the deposit's commit, before RQ records the success: the worker
    runs the job again (HORSE_DEATH_RETRIES), and the deposit counts once."""
    worker = start_worker(
        worker_class="dying_workers.DiesOnceAfterDepositWorker", extra_env={"DIED_ONCE_MARKER": str(tmp_path / "died")}
    )
    queue = queue_of(worker)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    deposit = enqueue(queue, "deposit", account["id"], 5)
    assert result(deposit, timeout=30)["balance"] == 5  # not 10: the command id was recorded
    assert (tmp_path / "died").exists(), "the first run's horse died"
    assert deposit.get_meta()["horse_deaths"] == 1
    assert call(queue, "get_account", account["id"])["version"] == 2


def test_a_job_that_kills_every_horse_fails_after_its_retries_and_can_be_requeued(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue]
) -> None:
    dying = start_worker(worker_class="dying_workers.DiesAfterDepositWorker")
    queue = queue_of(dying)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    deposit = enqueue(queue, "deposit", account["id"], 5)
    with pytest.raises(JobFailedError, match="Work-horse terminated unexpectedly"):
        result(deposit, timeout=60)
    assert deposit.get_meta()["horse_deaths"] == 1 + HORSE_DEATH_RETRIES
    assert dying.stop(signal.SIGTERM) == 0

    # What `rq requeue` does; a worker that lives runs it again, with the same job id.
    queue.failed_job_registry.requeue(deposit.id)
    start_worker(queue=dying.queue, database_url=dying.env["DATABASE_URL"])
    wait_for(lambda: deposit.get_status() == JobStatus.FINISHED, 30, "the requeued deposit to run")
    latest = deposit.latest_result()
    assert latest is not None and latest.return_value is not None
    assert latest.return_value["balance"] == 5  # not 10: the command id was recorded
    assert call(queue, "get_account", account["id"])["version"] == 2


class RemoveFile:
    """Unpickling this removes a file: what a pickled job can do before any check runs."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.remove, (str(self.path),)


@pytest.mark.logs_errors("refused jobs fail, and RQ logs each failure with its traceback")
def test_only_json_jobs_naming_functions_of_jobs_py_run(
    start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue], tmp_path: Path
) -> None:
    worker = start_worker()
    json_queue = queue_of(worker)
    target = tmp_path / "precious.txt"
    target.write_text("still here")
    # A job naming any importable function: RQ itself would run it.
    by_name = json_queue.enqueue("os.remove", str(target))
    # A pickled job whose arguments run code as they are decoded.
    pickle_queue = Queue(worker.queue, connection=json_queue.connection, serializer=DefaultSerializer)
    pickled = pickle_queue.enqueue("jobs.health", RemoveFile(target))
    with pytest.raises(JobFailedError, match=r"UnknownJobError: 'os.remove' is not a job of these workers"):
        result(by_name, timeout=30)
    with pytest.raises(JobFailedError, match="DeserializationError"):
        result(pickled, timeout=30)
    assert target.read_text() == "still here"


def test_a_worker_asked_for_pickle_refuses_to_start(redis_url: str, make_database_url: Callable[[], str]) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": make_database_url()}
    rq = str(Path(sys.executable).parent / "rq")
    started = subprocess.run(
        [rq, "worker", "-w", "workers.Worker", "--serializer", "pickle", "--burst", "refused"],
        cwd=RECIPE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "these workers accept JSON jobs only, not 'pickle'" in started.stderr
