from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery_worker import Tasks

from cookbook_testing.brokers import rabbitmq_url
from cookbook_testing.workers import CeleryWorker, check_logs

pytest_plugins = ["cookbook_testing.plugin"]

BROKERS = ("redis", "rabbitmq")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--broker", choices=BROKERS, default=None, help="default: $COOKBOOK_TEST_BROKER, else redis")


@pytest.fixture(scope="session")
def broker_url(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> str:
    broker = pytestconfig.getoption("--broker") or os.environ.get("COOKBOOK_TEST_BROKER") or "redis"
    if broker == "redis":
        return str(request.getfixturevalue("redis_url"))
    url = rabbitmq_url()
    if url is None:
        pytest.fail("the RabbitMQ tests need a server: set RABBITMQ_URL (e.g. amqp://guest:guest@127.0.0.1:5672//)")
    return url


@pytest.fixture(scope="session")
def result_backend(broker_url: str) -> str:
    # As celery_app.py does by default: Redis stores results; with RabbitMQ they
    # come back to the caller as messages (rpc://), so no second service is needed.
    return broker_url if broker_url.startswith("redis") else "rpc://"


@pytest.fixture
def start_worker(
    recipe_dir: Path,
    broker_url: str,
    result_backend: str,
    make_database_url: Callable[[], str],
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., CeleryWorker]]:
    """Start a real worker on a new database; it is stopped after the test."""
    workers: list[CeleryWorker] = []

    def start(
        *,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        until: Callable[[CeleryWorker], bool] | None = None,
        **kwargs: Any,
    ) -> CeleryWorker:
        """``until``: when to return (default: the worker says it is ready)."""
        env = {
            "CELERY_BROKER_URL": broker_url,
            "CELERY_RESULT_BACKEND": result_backend,
            "DATABASE_URL": database_url or make_database_url(),
            **(extra_env or {}),
        }
        worker = CeleryWorker(recipe_dir, env, **kwargs)
        workers.append(worker)
        worker.start(timeout=90, until=None if until is None else lambda: until(worker))
        return worker

    yield start
    for worker in workers:
        worker.__exit__()
    check_logs(request, workers)


@pytest.fixture(scope="session")
def client(broker_url: str, result_backend: str) -> Iterator[Celery]:
    """A Celery client that knows the tasks only by name, as another service would."""
    app = Celery("client", broker=broker_url, backend=result_backend)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    yield app
    app.close()


@pytest.fixture
def tasks(client: Celery, start_worker: Callable[..., CeleryWorker]) -> Tasks:
    return Tasks(client, start_worker())
