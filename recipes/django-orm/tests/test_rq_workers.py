"""The project's RQ workers: real ``python manage.py rqworker`` (and ``rqworker-pool``)
processes, through django-rq, running the jobs views enqueue, on the event store the
views write to.

Each test's workers take a queue of their own, named in ``RQ_QUEUE``; this process
plays the web server (Django's test client), sends with ``TASK_QUEUE=rq`` through the
same Valkey, and reads the jobs back from it.
"""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client as DjangoClient
from django.test import override_settings
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer

from bank.models import AuditEntry
from bank.views import rq_job_id
from config.database import POOL_MAX_SIZE
from conftest import balances, funded_accounts, request_transfer, use_database
from cookbook_testing.django_checks import HTTPS
from cookbook_testing.faults import FaultProxy
from cookbook_testing.processes import wait_for
from cookbook_testing.workers import DjangoRQWorker, check_logs

#: The forking class (a work horse per job) and the one that runs jobs in the worker.
WORKER_CLASSES = ["bank.rq_workers.Worker", "bank.rq_workers.SimpleWorker"]


def rq_settings(redis_url: str, queue: str) -> dict[str, Any]:
    """The settings that make this process's views send to ``queue`` through RQ."""
    config = {"URL": redis_url, "SERIALIZER": "rq.serializers.JSONSerializer", "DEFAULT_TIMEOUT": 30}
    return {"TASK_QUEUE": "rq", "RQ_QUEUE": queue, "RQ_QUEUES": {queue: config}}


@pytest.fixture
def start_worker(
    recipe_dir: Path, redis_url: str, server_env: dict[str, str], django_database: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., DjangoRQWorker]]:
    """Start a worker on this test's database and a queue of its own; this process's views
    then send there. Stopped (bounded) after the test."""
    workers: list[DjangoRQWorker] = []
    overridden: list[override_settings] = []

    def start(
        worker_class: str | None = None,
        *,
        pool: int = 0,
        database_url: str = "",
        queue: str = "",
        env: dict[str, str] | None = None,
    ) -> DjangoRQWorker:
        queue = queue or f"test-{uuid.uuid4().hex[:12]}"
        worker_env = {
            **server_env,
            "DATABASE_URL": database_url or django_database,
            "RQ_REDIS_URL": redis_url,
            "RQ_QUEUE": queue,
            **(env or {}),
        }
        worker = DjangoRQWorker(recipe_dir, worker_env, queue=queue, worker_class=worker_class, pool=pool)
        workers.append(worker)
        worker.start(timeout=90)
        sending = override_settings(**rq_settings(redis_url, queue))
        sending.enable()
        overridden.append(sending)
        return worker

    yield start
    for sending in reversed(overridden):
        sending.disable()
    for worker in workers:
        worker.__exit__()
    check_logs(request, workers)


def times_run(worker: DjangoRQWorker, job_id: str) -> int:
    return len(re.findall(rf"Job OK \({re.escape(job_id)}\)", worker.log()))


def job_result(redis_url: str, job_id: str) -> dict[str, Any]:
    """What a job that ran returned; fails with the job's error if it failed."""
    job = Job.fetch(job_id, connection=redis.Redis.from_url(redis_url), serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED, job.latest_result()
    value = job.return_value()
    assert isinstance(value, dict), value
    return value


@pytest.mark.parametrize("worker_class", WORKER_CLASSES)
def test_a_transfer_a_view_enqueues_runs_once_in_an_rq_worker(
    worker_class: str, start_worker: Callable[..., DjangoRQWorker], redis_url: str
) -> None:
    worker = start_worker(worker_class)
    client = DjangoClient()
    source, destination = funded_accounts(client)

    key = f"transfer-{uuid.uuid4()}"
    job_id = request_transfer(client, source, destination, 30, key=key)
    assert job_id == rq_job_id(f"idempotency-key:{key}")
    wait_for(lambda: times_run(worker, job_id) == 1, 60, "the job to run")
    assert job_result(redis_url, job_id)["balance"] == 70
    # Sent again with its key (the client heard no answer): the same job, run again, changes nothing.
    assert request_transfer(client, source, destination, 30, key=key) == job_id
    wait_for(lambda: times_run(worker, job_id) == 2, 60, "the job enqueued again to run")

    assert balances(client, source, destination) == {source: 70, destination: 30}
    assert AuditEntry.objects.filter(command_id=job_id, action="transfer").count() == 1

    constructed = worker.constructed()
    if worker_class.endswith(".Worker"):  # a work horse per job, each with its own application
        assert len(constructed) == 2
        assert worker.pid not in {pid for pid, _ in constructed}
    else:  # one application, in the worker process, for every job
        assert [pid for pid, _ in constructed] == [worker.pid]
    assert worker.stop(signal.SIGTERM) == 0
    assert sorted(worker.closed()) == sorted(constructed)


def test_a_pool_of_workers_runs_every_job_once(start_worker: Callable[..., DjangoRQWorker], redis_url: str) -> None:
    """``rqworker-pool``: its workers (forked by the pool, each forking a horse per job) share the queue."""
    worker = start_worker("bank.rq_workers.Worker", pool=2)
    client = DjangoClient()
    source, destination = funded_accounts(client)
    job_ids = [request_transfer(client, source, destination, 5, key=f"pool-{uuid.uuid4()}") for _ in range(6)]
    wait_for(lambda: all(times_run(worker, job_id) == 1 for job_id in job_ids), 90, "every job to run")
    assert balances(client, source, destination) == {source: 70, destination: 30}
    assert worker.stop(signal.SIGTERM) == 0


def test_a_job_enqueued_twice_at_once_applies_once(start_worker: Callable[..., DjangoRQWorker], redis_url: str) -> None:
    """Two requests with one key at once, or a job requeued while it still runs: the same
    job id twice in the queue, taken by two workers at once. One applies it; the other
    finds it applied (one audit row too)."""
    worker = start_worker("bank.rq_workers.SimpleWorker", pool=2)
    client = DjangoClient()
    source, destination = funded_accounts(client)
    queue = Queue(worker.queue, connection=redis.Redis.from_url(redis_url), serializer=JSONSerializer)
    job_id = uuid.uuid4().hex
    for _ in range(2):
        queue.enqueue("bank.jobs.transfer", source, destination, 10, job_id=job_id)
    wait_for(lambda: times_run(worker, job_id) == 2, 60, "both to run")
    assert balances(client, source)[source] == 90
    assert AuditEntry.objects.filter(command_id=job_id, action="transfer").count() == 1


def test_a_request_that_rolls_back_enqueues_no_job(django_database: str, redis_url: str) -> None:
    """The job is enqueued on commit: a request that fails after asking for it enqueues
    nothing (the view that fails is the Celery test's, in its own URLconf)."""
    queue = f"rolled-back-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(redis_url)
    with override_settings(**rq_settings(redis_url, queue), ROOT_URLCONF="test_task_workers"):
        client = DjangoClient(raise_request_exception=False)
        source, destination = funded_accounts(client)
        body = {"to_account_id": destination, "amount": 5}
        failed = client.post(f"/accounts/{source}/transfers-then-fail", body, "application/json", headers=HTTPS)
        assert failed.status_code == 500
        assert broker.llen(f"rq:queue:{queue}") == 0
        # The same request that does not fail enqueues one job (so the check above can fail).
        sent = client.post(f"/accounts/{source}/transfers", body, "application/json", headers=HTTPS)
        assert sent.status_code == 202
        assert broker.llen(f"rq:queue:{queue}") == 1
    broker.delete(f"rq:queue:{queue}")


def test_a_redis_that_is_down_is_a_503_and_the_retry_enqueues_the_job(django_database: str, redis_url: str) -> None:
    queue = f"redis-down-{uuid.uuid4().hex[:8]}"
    key = f"redis-down-{uuid.uuid4()}"
    body = {"to_account_id": "", "amount": 5}
    with override_settings(**rq_settings("redis://127.0.0.1:9/0?socket_connect_timeout=5", queue)):
        client = DjangoClient()
        source, destination = funded_accounts(client)
        body["to_account_id"] = destination
        started = time.monotonic()
        response = client.post(
            f"/accounts/{source}/transfers", body, "application/json", headers={**HTTPS, "Idempotency-Key": key}
        )
        seconds = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "task queue is unavailable" in response.json()["error"]
    print(f"Redis down: 503 after {seconds:.2f}s")

    # The client sends it again with its key once Redis is back: one job.
    broker = redis.Redis.from_url(redis_url)
    with override_settings(**rq_settings(redis_url, queue)):
        job_id = request_transfer(client, source, destination, 5, key=key)
    assert broker.llen(f"rq:queue:{queue}") == 1
    assert AuditEntry.objects.filter(command_id=f"idempotency-key:{key}", action="transfer-requested").count() == 1
    assert job_id == rq_job_id(f"idempotency-key:{key}")
    broker.delete(f"rq:queue:{queue}")


# --- Django's connections in RQ's workers ------------------------------------------


def run_health_jobs(redis_url: str, worker: DjangoRQWorker, count: int) -> list[dict[str, Any]]:
    queue = Queue(worker.queue, connection=redis.Redis.from_url(redis_url), serializer=JSONSerializer)
    jobs = [queue.enqueue("bank.jobs.health") for _ in range(count)]
    wait_for(lambda: all(times_run(worker, job.id) == 1 for job in jobs), 60, "the health jobs to run")
    return [job_result(redis_url, job.id) for job in jobs]


@pytest.mark.requires_postgresql
@pytest.mark.parametrize(
    ("worker_class", "pool"),
    [("bank.rq_workers.Worker", 0), ("bank.rq_workers.SimpleWorker", 0), ("bank.rq_workers.Worker", 2)],
    ids=["rqworker-Worker", "rqworker-SimpleWorker", "rqworker-pool-Worker"],
)
@pytest.mark.parametrize("django_db_pool", ["0", "1"], ids=["CONN_MAX_AGE", "Django-pool"])
def test_each_work_horse_opens_its_own_database_session(
    worker_class: str, pool: int, django_db_pool: str, start_worker: Callable[..., DjangoRQWorker], redis_url: str
) -> None:
    """django-rq closes the worker's connections before it forks (``rqworker-pool``: the
    pool's too, before it forks its workers); the forking class's horses then each open
    a session of their own, and close it before they exit: none shares a connection
    with another process (what corrupts TLS connections in forked workers,
    rq/django-rq#650). The class that runs jobs in the worker keeps one session (with
    Django's own pool, ``DJANGO_DB_POOL=1``, the pool's). With that pool, each horse
    makes a pool of its own, and closes it."""
    worker = start_worker(worker_class, pool=pool, env={"DJANGO_DB_POOL": django_db_pool})
    reports = run_health_jobs(redis_url, worker, 4)
    sessions = {report["database_session"] for report in reports}
    pids = {report["pid"] for report in reports}
    if worker_class.endswith(".Worker"):
        assert len(sessions) == len(pids) == 4
        # The worker processes: the one, or the pool and its children. (A lone worker's
        # children are its horses, the last one perhaps not reaped yet.)
        workers = {worker.pid} | (worker.child_pids() if pool else set())
        assert not pids & workers, "a job ran in a worker, not in its horse"
    else:  # one session kept; with Django's pool, the pool's few, all in the worker's process
        assert len(sessions) == 1 if django_db_pool == "0" else 1 <= len(sessions) <= POOL_MAX_SIZE
        assert pids == {worker.pid}


@pytest.mark.requires_postgresql
@pytest.mark.logs_errors("the known-bad worker's jobs fail on a dead connection, each with its traceback")
@pytest.mark.parametrize(
    ("worker_class", "failed_after_the_restart"),
    [
        ("bank.rq_workers.SimpleWorker", 0),
        ("tests.rq_worker_keeping_its_connection.SimpleWorkerKeepingItsConnection", 3),
    ],
    ids=["the-recipes", "without-close_old_connections"],
)
def test_a_worker_that_keeps_its_connection_comes_through_a_database_restart(
    worker_class: str,
    failed_after_the_restart: int,
    start_worker: Callable[..., DjangoRQWorker],
    redis_url: str,
    database_behind_a_fault_proxy: FaultProxy,
) -> None:
    """The connection the worker keeps between jobs is cut (the database restarted).
    The recipe's worker replaces it before the next job (Django's health check, which
    ``close_old_connections`` re-arms): no job fails. Without that, every job fails."""
    database = database_behind_a_fault_proxy
    use_database(database.upstream_url)
    worker = start_worker(worker_class, database_url=database.url)
    run_health_jobs(redis_url, worker, 1)  # the worker now holds a connection
    database.go_down()
    database.come_back()
    queue = Queue(worker.queue, connection=redis.Redis.from_url(redis_url), serializer=JSONSerializer)
    jobs = [queue.enqueue("bank.jobs.health") for _ in range(3)]

    def ended() -> list[JobStatus]:
        statuses = [job.get_status(refresh=True) for job in jobs]
        return statuses if all(status in (JobStatus.FINISHED, JobStatus.FAILED) for status in statuses) else []

    statuses = wait_for(ended, 60, "the jobs after the restart to end")
    assert statuses.count(JobStatus.FAILED) == failed_after_the_restart, statuses
