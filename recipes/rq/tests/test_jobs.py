"""The jobs, called by name through real ``rq worker`` processes: results and concurrency."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rq import Queue
from rq_worker import RQWorker

from client import call, enqueue, result

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
# CPU here: 40 deposits show the same thing, in the time 400 take elsewhere.
@pytest.mark.parametrize(("worker_class", "deposits"), [("Worker", 400), ("SimpleWorker", 400), ("SpawnWorker", 40)])
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
