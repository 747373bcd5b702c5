"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from rq.queue import Queue

from cookbook_testing.contract import open_account
from cookbook_testing.django_checks import manage
from cookbook_testing.hosts_checks import app_hosts, starting_with
from cookbook_testing.http import HTTPClient
from cookbook_testing.pgbouncer import PgBouncer
from cookbook_testing.pooler_checks import BehindPgBouncerChecks
from cookbook_testing.processes import wait_for
from cookbook_testing.proxy_checks import BehindNginxChecks, ContractThroughNginx, HttpsBehindNginxChecks
from cookbook_testing.servers import ServerProcess
from cookbook_testing.standalone import (
    ConstructedWhenForkedChecks,
    ContractOverServer,
    StandaloneChecks,
    UWSGILazyAppsChecks,
    UWSGIStopChecks,
)
from cookbook_testing.workers import DjangoRQWorker


class TestContractOverServers(ContractOverServer):
    pass


class TestContractThroughNginx(ContractThroughNginx):
    pass


class TestServers(ConstructedWhenForkedChecks, StandaloneChecks):
    pass


class TestLazyApps(UWSGILazyAppsChecks):
    """uWSGI with lazy-apps: wsgi.py is imported in each worker, which constructs its application at once."""


class TestUWSGIStop(UWSGIStopChecks):
    """A stop while uWSGI replaces a worker."""


class TestBehindNginx(BehindNginxChecks):
    """nginx in front: uwsgi_pass to uWSGI's own socket, proxy_pass to gunicorn."""


class TestHttpsBehindNginx(HttpsBehindNginxChecks):
    """nginx taking HTTPS; the project redirecting plain HTTP there, as in production."""

    redirect_env = {"DJANGO_SECURE_SSL_REDIRECT": "1"}


class TestBehindPgBouncer(BehindPgBouncerChecks):
    """Its workers through PgBouncer in transaction pooling (PGBOUNCER_POOL_MODE)."""


@pytest.mark.topology
@pytest.mark.requires_postgresql
class TestWebHostsAndAQueueWorkerHost:
    """Two web hosts (uWSGI, 4 workers each) behind one nginx send transfers through RQ
    to a queue-worker host, all on one database; the worker host is replaced midway."""

    @pytest.fixture(scope="class")
    @staticmethod
    def server_kind() -> str:
        return "uwsgi"

    def test_transfers_sent_through_two_web_hosts_run_once_on_the_worker_host(
        self,
        start_server: Callable[..., ServerProcess],
        make_store_env: Callable[[], dict[str, str]],
        recipe_dir: Path,
        server_env: dict[str, str],
        redis_url: str,
    ) -> None:
        """Every transfer is sent twice with its key (a client's retry), half before the
        worker host is stopped (SIGTERM: it finishes its job) and half to its
        replacement: each applied once, none failed, the queue empty at the end."""
        store = make_store_env()
        queue = f"hosts-{uuid.uuid4().hex[:12]}"
        rq_env = {"TASK_QUEUE": "rq", "RQ_REDIS_URL": redis_url, "RQ_QUEUE": queue}
        worker_env = {**server_env, **store, **rq_env}
        redis_connection = redis.Redis.from_url(redis_url)
        with app_hosts(starting_with(start_server, store, rq_env), "uwsgi", recipe_dir) as hosts:
            client = hosts.nginx.client
            pairs = [(funded_account(client), str(open_account(client)["id"])) for _ in range(PAIRS)]
            transfers = [(s, d, f"transfer-{uuid.uuid4()}") for s, d in pairs for _ in range(TRANSFERS_EACH)]
            half = len(transfers) // 2
            first_host = DjangoRQWorker(recipe_dir, worker_env, queue=queue, kind="queue-worker-host-1").start(90)
            try:
                assert send_twice(client, transfers[:half]) == [202] * 2 * half
                wait_for(lambda: moved(client, pairs) > 0, 60, "the worker host to run a transfer")
                assert first_host.stop(signal.SIGTERM) == 0
            finally:
                first_host.kill()
            second_host = DjangoRQWorker(recipe_dir, worker_env, queue=queue, kind="queue-worker-host-2").start(90)
            try:
                assert send_twice(client, transfers[half:]) == [202] * 2 * (len(transfers) - half)
                expected = AMOUNT * len(transfers)
                wait_for(lambda: moved(client, pairs) == expected, 120, "every transfer to run")
                rq_queue = Queue(queue, connection=redis_connection)
                wait_for(lambda: rq_queue.count == 0 and rq_queue.started_job_registry.count == 0, 60, "the queue")
                assert rq_queue.failed_job_registry.count == 0
                assert moved(client, pairs) == expected
                for source, destination in pairs:
                    assert balance(client, source) == FUNDS - AMOUNT * TRANSFERS_EACH
                    assert balance(client, destination) == AMOUNT * TRANSFERS_EACH
            finally:
                second_host.stop(signal.SIGTERM)
                second_host.kill()
        ran = first_host.log().count("Job OK") + second_host.log().count("Job OK")
        print(f"{len(transfers)} transfers sent twice through 2 web hosts: {ran} jobs ran, each transfer applied once")
        assert ran >= len(transfers)
        assert first_host.errors_logged() == second_host.errors_logged() == []


#: Account pairs, transfers from each source, cents per transfer, and each source's funds.
PAIRS = 4
TRANSFERS_EACH = 10
AMOUNT = 10
FUNDS = 1000


def funded_account(client: HTTPClient) -> str:
    account = str(open_account(client)["id"])
    assert client.post(f"/accounts/{account}/deposit", json={"amount": FUNDS}).status == 200
    return account


def balance(client: HTTPClient, account: str) -> int:
    return int(client.get(f"/accounts/{account}").json["balance"])


def moved(client: HTTPClient, pairs: list[tuple[str, str]]) -> int:
    """Cents that have reached the destinations so far."""
    return sum(balance(client, destination) for _, destination in pairs)


def send_twice(client: HTTPClient, transfers: list[tuple[str, str, str]]) -> list[int]:
    """Each transfer requested twice at once, with its key, as a client that retries."""

    def send(transfer: tuple[str, str, str]) -> int:
        source, destination, key = transfer
        body = {"to_account_id": destination, "amount": AMOUNT}
        return client.post(f"/accounts/{source}/transfers", json=body, headers={"Idempotency-Key": key}).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(send, transfers * 2))


#: Two queries in one process, each on a new connection unless the first one stays.
TWO_QUERIES = """
from django.db import connection
outcomes = []
for _ in range(2):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        outcomes.append("served")
    except Exception as error:
        outcomes.append(type(error).__name__)
print(outcomes)
"""


@pytest.mark.topology
@pytest.mark.requires_postgresql
def test_a_connection_refused_its_limits_is_never_used_behind_pgbouncer(
    recipe_dir: Path, server_env: dict[str, str], make_store_env: Callable[[], dict[str, str]]
) -> None:
    """Under transaction pooling, on a database whose role gives no limits, every query is
    refused: Django keeps a connection whose connection_created handler raised, and the
    project closes it, so the second query does not run on it unchecked."""
    database_url = make_store_env()["DATABASE_URL"]
    with PgBouncer(database_url, pool_mode="transaction") as pgbouncer:
        result = manage(
            recipe_dir,
            "shell",
            "-c",
            TWO_QUERIES,
            DJANGO_SECRET_KEY=server_env["DJANGO_SECRET_KEY"],
            DATABASE_URL=pgbouncer.url(database_url),
            PGBOUNCER_POOL_MODE="transaction",
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['ConfigurationError', 'ConfigurationError']", result.stdout
