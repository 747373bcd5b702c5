"""The jobs, called by name through real ``rq worker`` processes: results and concurrency."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from redis import Redis
from rq import Queue
from rq_worker import RQWorker

from client import call, enqueue, job_queue, result
from cookbook_testing.standalone import DEPOSITS

#: redis-py 8's default socket timeout, in seconds.
REDIS_SOCKET_TIMEOUT = 5
ACCOUNT_FIELDS = {"id", "full_name", "email_address", "balance", "overdraft_limit", "is_closed", "version"}


def test_jobs_return_accounts_as_json(start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue]) -> None:
    queue = queue_of(start_worker(worker_class="SimpleWorker"))
    ada = call(queue, "open_account", "Ada Lovelace", "ada@example.com")
    grace = call(queue, "open_account", "Grace Hopper", "grace@example.com")
    assert set(ada) == ACCOUNT_FIELDS
    assert (ada["balance"], ada["version"]) == (0, 1)
    assert call(queue, "deposit", ada["id"], 1000)["balance"] == 1000
    assert call(queue, "withdraw", ada["id"], 250)["balance"] == 750
    assert call(queue, "transfer", ada["id"], grace["id"], 50) == {**ada, "balance": 700, "version": 4}
    assert call(queue, "get_account", grace["id"])["balance"] == 50
    assert set(call(queue, "health")) == {"pid", "application", "store"}


# A SpawnWorker starts a new interpreter for every job, a quarter of a second of
# CPU here: 40 deposits show the same thing, in about the time the others' DEPOSITS take.
@pytest.mark.parametrize(
    ("worker_class", "deposits"), [("Worker", DEPOSITS), ("SimpleWorker", DEPOSITS), ("SpawnWorker", 40)]
)
def test_concurrent_deposits_on_one_account_with_a_pool_of_4_workers(
    worker_class: str, deposits: int, start_worker: Callable[..., RQWorker], queue_of: Callable[..., Queue]
) -> None:
    pool = start_worker(worker_class=worker_class, pool=4)  # rq worker-pool -n 4, as the README runs it
    queue = queue_of(pool)
    account = call(queue, "open_account", "Ada", "ada@example.com")
    jobs = [enqueue(queue, "deposit", account["id"], 7) for _ in range(deposits)]
    versions = sorted(result(job, timeout=120)["version"] for job in jobs)
    final = call(queue, "get_account", account["id"])
    assert (final["balance"], final["version"]) == (deposits * 7, deposits + 1)
    assert versions == list(range(2, deposits + 2))  # each deposit saw the one before it: none lost
    for job in jobs:
        job.refresh()  # the client's copy predates the run; the worker's name is in Redis
    assert len({job.worker_name for job in jobs}) == 4, "all four workers took deposits"
    assert pool.pid not in {pid for pid, _ in pool.constructed()}, "the pool process constructed an application"


def test_a_result_can_be_waited_for_longer_than_the_redis_socket_timeout(
    start_worker: Callable[..., RQWorker], redis: Redis
) -> None:
    # redis-py 8 times a socket read out after 5 s, so a single blocking read of
    # a result that takes longer would fail. The job is enqueued before any
    # worker listens, and the worker starts only after that long.
    queue = job_queue(f"test-{uuid.uuid4().hex[:12]}", connection=redis)
    job = enqueue(queue, "health")
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append(result(job, timeout=120))
        except Exception as error:  # reported by the assertions below
            outcome.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    started = time.monotonic()
    while time.monotonic() - started < REDIS_SOCKET_TIMEOUT + 2:
        assert waiter.is_alive(), outcome  # still waiting, not failed
        time.sleep(0.5)
    start_worker(worker_class="SimpleWorker", queue=queue.name)
    waiter.join(timeout=120)
    assert not waiter.is_alive()
    assert isinstance(outcome[0], dict), outcome
    assert set(outcome[0]) == {"pid", "application", "store"}
