from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery_worker import Tasks

from cookbook_testing.brokers import delete_queue
from cookbook_testing.workers import CeleryWorker, check_logs

pytest_plugins = ["cookbook_testing.plugin"]


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
    for queue in {worker.queue for worker in workers}:
        delete_queue(broker_url, queue)
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
