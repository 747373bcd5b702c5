from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq_worker import RQWorker, recipe_worker

from client import job_queue
from cookbook_testing.workers import check_logs

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture(scope="session")
def redis(redis_url: str) -> Iterator[Redis]:
    connection = Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def start_worker(
    redis_url: str, make_database_url: Callable[[], str], request: pytest.FixtureRequest
) -> Iterator[Callable[..., RQWorker]]:
    """Start a real worker (or pool) on a new database, unless given one; stopped after the test."""
    workers: list[RQWorker] = []

    def start(
        *,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        timeout: float = 60,
        until: Callable[[RQWorker], bool] | None = None,
        **kwargs: Any,
    ) -> RQWorker:
        """``until``: when to return (default: every worker listens on its queue)."""
        env = {"REDIS_URL": redis_url, "DATABASE_URL": database_url or make_database_url(), **(extra_env or {})}
        worker = recipe_worker(env, **kwargs)
        workers.append(worker)
        worker.start(timeout=timeout, until=None if until is None else lambda: until(worker))
        return worker

    yield start
    for worker in workers:
        worker.__exit__()
    check_logs(request, workers)


@pytest.fixture
def queue_of(redis: Redis) -> Callable[[RQWorker], Queue]:
    """The client's queue for a worker: JSON jobs, by name, as client.py enqueues them."""
    return lambda worker: job_queue(worker.queue, connection=redis)
