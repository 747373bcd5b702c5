"""The project's own task workers: real ``celery worker`` processes, running the
tasks views send, on the event store the views write to.

Each test starts workers on its own queue, against its own migrated database;
the test's process plays the web server (Django's test client) and sends
through the same broker: a private Valkey, or RabbitMQ (``--broker rabbitmq``
with ``RABBITMQ_URL``, as the ``django-orm-rabbitmq-postgres`` environment runs
this module).
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
from celery.result import AsyncResult
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.test import Client as DjangoClient
from django.test import override_settings
from django.urls import path

from bank import views
from bank.api import api_view
from bank.models import AuditEntry
from bank.transactions import atomic_with_retries
from config import urls as project_urls
from config.celery_app import app as celery_app
from conftest import balances, funded_accounts, request_transfer, use_database
from cookbook_testing.brokers import delete_queue, queued_messages, unreachable_like
from cookbook_testing.django_checks import HTTPS
from cookbook_testing.faults import FaultProxy
from cookbook_testing.processes import wait_for
from cookbook_testing.workers import CeleryWorker, check_logs

#: Where every test's worker sends its results, and this process reads them.
pytestmark = pytest.mark.usefixtures("celery_on_the_test_broker")


def use_broker(broker_url: str, queue: str) -> None:
    """Make this process's Celery app (the one the views send with) use ``broker_url`` and ``queue``."""
    celery_app.conf.update(broker_url=broker_url, task_default_queue=queue)
    # The app keeps its connections to the broker it was first given: drop them.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="session")
def celery_on_the_test_broker(broker_url: str, result_backend: str) -> Iterator[None]:
    celery_app.conf.update(result_backend=result_backend)
    use_broker(broker_url, "unused")
    yield


@pytest.fixture
def start_worker(
    recipe_dir: Path,
    broker_url: str,
    result_backend: str,
    server_env: dict[str, str],
    django_database: str,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., CeleryWorker]]:
    """Start ``celery -A config.celery_app worker`` on this test's database; this
    process's views then send to its queue. Stopped (bounded) after the test."""
    workers: list[CeleryWorker] = []

    def start(
        *,
        pool: str = "prefork",
        app: str = "config.celery_app",
        concurrency: int = 2,
        database_url: str = "",
        extra_env: dict[str, str] | None = None,
    ) -> CeleryWorker:
        worker = CeleryWorker(
            recipe_dir,
            {
                **server_env,
                "DATABASE_URL": database_url or django_database,
                "CELERY_BROKER_URL": broker_url,
                "CELERY_RESULT_BACKEND": result_backend,
                **(extra_env or {}),
            },
            app=app,
            pool=pool,
            concurrency=concurrency,
            kind=f"django-celery-{pool}",
        )
        workers.append(worker)
        worker.start(timeout=90)
        use_broker(broker_url, worker.queue)
        return worker

    yield start
    for worker in workers:
        worker.__exit__()
    for queue in {worker.queue for worker in workers}:
        delete_queue(broker_url, queue)
    check_logs(request, workers)


def times_run(worker: CeleryWorker, task_id: str) -> int:
    return len(re.findall(rf"Task bank\.transfer\[{re.escape(task_id)}\] succeeded", worker.log()))


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_a_transfer_a_view_sends_runs_once_in_a_worker(pool: str, start_worker: Callable[..., CeleryWorker]) -> None:
    worker = start_worker(pool=pool)
    client = DjangoClient()
    source, destination = funded_accounts(client)

    key = f"transfer-{uuid.uuid4()}"  # the results of every test's tasks share one backend
    task_id = request_transfer(client, source, destination, 30, key=key)
    assert AsyncResult(task_id, app=celery_app).get(timeout=60)["balance"] == 70
    # Sent again with its key (the client heard no answer): the same task, run
    # again, changes nothing.
    assert request_transfer(client, source, destination, 30, key=key) == task_id
    wait_for(lambda: times_run(worker, task_id) == 2, 60, "the task sent again to run")

    assert balances(client, source, destination) == {source: 70, destination: 30}
    audit = sorted(AuditEntry.objects.filter(command_id=task_id).values_list("action", flat=True))
    assert audit == ["transfer", "transfer-requested"]

    # One application per process that runs tasks: each child (prefork), or the worker's own process.
    constructed = dict(worker.constructed())
    assert len(constructed) == len(worker.constructed()), "a process constructed two applications"
    if pool == "prefork":
        assert set(constructed) == worker.child_pids()  # not the parent
    else:
        assert set(constructed) == {worker.pid}
    assert worker.stop(signal.SIGTERM) == 0
    assert dict(worker.closed()) == constructed


def test_a_task_delivered_twice_at_once_applies_once(start_worker: Callable[..., CeleryWorker]) -> None:
    """What a broker's redelivery looks like to the worker: the same task id, twice, here at
    once, in two children: both find the command not yet applied; one applies it, and the
    other's write conflicts, runs again, and finds it applied (one audit row too)."""
    worker = start_worker()
    client = DjangoClient()
    source, destination = funded_accounts(client)
    arguments, task_id = (source, destination, 10), str(uuid.uuid4())
    for _ in range(2):
        celery_app.send_task("bank.transfer", arguments, task_id=task_id)
    wait_for(lambda: times_run(worker, task_id) == 2, 60, "both deliveries to run")
    assert balances(client, source) == {source: 90}
    assert AuditEntry.objects.filter(command_id=task_id, action="transfer").count() == 1


@pytest.mark.requires_a_database_server
def test_a_task_that_finds_the_database_down_runs_again_and_applies_once(
    start_worker: Callable[..., CeleryWorker], database_behind_a_fault_proxy: FaultProxy
) -> None:
    """The task retries itself (bank.tasks.STORE_RETRY_COUNTDOWN) while the database is
    unreachable, with the same task id, and succeeds once it is back."""
    database = database_behind_a_fault_proxy
    use_database(database.upstream_url)  # this process writes straight to it; the worker, through the proxy
    client = DjangoClient()
    source, destination = funded_accounts(client)
    worker = start_worker(database_url=database.url)
    database.go_down()
    task_id = str(uuid.uuid4())
    result = celery_app.send_task("bank.transfer", (source, destination, 10), task_id=task_id)
    wait_for(lambda: f"Task bank.transfer[{task_id}] retry" in worker.log(), 60, "the task to be retried")
    database.come_back()
    assert result.get(timeout=60)["balance"] == 90
    assert AuditEntry.objects.filter(command_id=task_id, action="transfer").count() == 1


@api_view("POST")
@atomic_with_retries
def transfer_request_then_fail(request: HttpRequest, account_id: str) -> JsonResponse:
    response = views.request_transfer(request, account_id)  # in this view's transaction
    assert response.status_code == 202, response.content
    raise RuntimeError("something failed after the task was requested")


# This module is also the URLconf of the test below: the project's, plus a view that fails.
urlpatterns = [
    *project_urls.urlpatterns,
    path("accounts/<str:account_id>/transfers-then-fail", transfer_request_then_fail),
]
handler500 = project_urls.handler500


@override_settings(ROOT_URLCONF=__name__)
def test_a_request_that_rolls_back_sends_no_task(django_database: str, broker_url: str) -> None:
    """The task is sent on commit: a request that fails after asking for it sends nothing."""
    queue = f"rolled-back-requests-{uuid.uuid4().hex[:8]}"
    use_broker(broker_url, queue)
    client = DjangoClient(raise_request_exception=False)
    source, destination = funded_accounts(client)
    body = {"to_account_id": destination, "amount": 5}

    failed = client.post(f"/accounts/{source}/transfers-then-fail", body, "application/json", headers=HTTPS)
    assert failed.status_code == 500
    assert queued_messages(broker_url, queue) == 0
    assert not AuditEntry.objects.filter(action="transfer-requested").exists()

    # The same request that does not fail sends one message (so the check above can fail).
    sent = client.post(f"/accounts/{source}/transfers", body, "application/json", headers=HTTPS)
    assert sent.status_code == 202
    assert queued_messages(broker_url, queue) == 1
    delete_queue(broker_url, queue)


def test_a_broker_that_is_down_is_a_503_and_the_retry_sends_the_task(django_database: str, broker_url: str) -> None:
    client = DjangoClient()
    source, destination = funded_accounts(client)
    key = f"broker-down-{uuid.uuid4()}"
    queue = f"broker-down-{uuid.uuid4().hex[:8]}"
    use_broker(unreachable_like(broker_url), queue)  # the discard port: nothing listens
    started = time.monotonic()
    response = client.post(
        f"/accounts/{source}/transfers",
        {"to_account_id": destination, "amount": 5},
        "application/json",
        headers={**HTTPS, "Idempotency-Key": key},
    )
    seconds = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "task queue is unavailable" in response.json()["error"]
    print(f"broker down: 503 after {seconds:.2f}s")

    # The client sends it again with its key once the broker is back: one message.
    use_broker(broker_url, queue)
    task_id = request_transfer(client, source, destination, 5, key=key)
    assert queued_messages(broker_url, queue) == 1
    assert AuditEntry.objects.filter(command_id=task_id, action="transfer-requested").count() == 1
    delete_queue(broker_url, queue)


# --- Django's connections in forked workers -----------------------------------------


def health_reports(worker: CeleryWorker, count: int) -> list[dict[str, Any]]:
    results = [celery_app.send_task("bank.health", queue=worker.queue) for _ in range(count)]
    return [result.get(timeout=60) for result in results]


@pytest.mark.requires_postgresql
def test_each_task_gets_a_database_session_of_its_own(start_worker: Callable[..., CeleryWorker]) -> None:
    """Celery's Django fixup closes every connection before and after each task, whatever
    ``CONN_MAX_AGE`` says (the recipe's is 60 s): a new PostgreSQL session per task."""
    worker = start_worker(concurrency=1)
    sessions = [report["database_session"] for report in health_reports(worker, 10)]
    assert len(set(sessions)) == 10, sessions


@pytest.mark.requires_postgresql
def test_with_djangos_pool_each_task_gets_a_new_pool(start_worker: Callable[..., CeleryWorker]) -> None:
    """Django's own pool (``DJANGO_DB_POOL=1``) is safe in prefork children, but Celery's
    fixup closes it after each task there (celery#10554): each task opens a new pool, and
    a new session, as without the pool."""
    worker = start_worker(concurrency=1, extra_env={"DJANGO_DB_POOL": "1"})
    client = DjangoClient()
    source, destination = funded_accounts(client)
    result = celery_app.send_task("bank.transfer", (source, destination, 10), task_id=str(uuid.uuid4()))
    assert result.get(timeout=60)["balance"] == 90
    sessions = [report["database_session"] for report in health_reports(worker, 10)]
    assert len(set(sessions)) == 10, sessions


#: Enough for four children to talk over the one socket at once.
TRANSFERS_ON_ONE_SOCKET = 24


@pytest.mark.requires_postgresql
@pytest.mark.logs_errors("the known-bad set-up's tasks fail, with tracebacks")
def test_children_that_inherit_their_parents_connection_fail(
    start_worker: Callable[..., CeleryWorker],
) -> None:
    """Known bad: without Celery's Django fixup, a prefork worker whose parent opened a
    connection hands it to every child, and the children talk over one socket at once."""
    start_worker(app="tests.celery_without_django_fixup", concurrency=4)
    client = DjangoClient()
    pairs = [funded_accounts(client, 1000) for _ in range(4)]
    connections.close_all()
    started = time.monotonic()
    results = [celery_app.send_task("bank.transfer", (*pairs[n % 4], 1)) for n in range(TRANSFERS_ON_ONE_SOCKET)]
    errors: dict[str, int] = {}
    for result in results:
        try:
            result.get(timeout=60)
        except Exception as error:  # whatever the interleaved protocol made of it
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
    failures = sum(errors.values())
    seconds = time.monotonic() - started
    print(f"celery prefork without the Django fixup: {failures} of {len(results)} failed in {seconds:.1f}s: {errors}")
    assert failures > 0
