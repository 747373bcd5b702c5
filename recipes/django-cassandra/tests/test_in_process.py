"""In-process tests with Django's test client: the contract, conflicts, and the production settings."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.test import Client as DjangoClient
from django.test import override_settings

from bank.accounts import bank_accounts
from bankaccounts.timeouts import request_timeout
from bankaccounts.web import MAX_BODY_BYTES
from cookbook_testing.contract import HttpContract
from eventsourcing_cassandra.factory import CassandraFactory

HTTPS = {"X-Forwarded-Proto": "https"}


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the Django project in this process."""


def open_account(client: DjangoClient) -> dict[str, object]:
    response = client.post(
        "/accounts", {"full_name": "Ada", "email_address": "ada@example.com"}, "application/json", headers=HTTPS
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_concurrent_deposits_from_threads_are_all_recorded(keyspace: str) -> None:
    """One application, many request threads: conflicts are retried by the application, none is lost."""
    account = open_account(DjangoClient())
    threads, deposits_per_thread = 6, 10
    statuses: list[int] = []

    def deposit_repeatedly() -> None:
        client = DjangoClient()
        for _ in range(deposits_per_thread):
            response = client.post(
                f"/accounts/{account['id']}/deposit", {"amount": 3}, "application/json", headers=HTTPS
            )
            statuses.append(response.status_code)

    workers = [threading.Thread(target=deposit_repeatedly) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    assert statuses == [200] * threads * deposits_per_thread
    final = DjangoClient().get(f"/accounts/{account['id']}", headers=HTTPS).json()
    assert (final["balance"], final["version"]) == (
        3 * threads * deposits_per_thread,
        1 + threads * deposits_per_thread,
    )


def test_the_stores_waits_fit_in_the_request_timeout(keyspace: str) -> None:
    factory = bank_accounts().factory
    assert isinstance(factory, CassandraFactory)
    datastore, seconds = factory.datastore, request_timeout()
    # Not the store's own 15 s, 10 s and 30 s: a dead writer's transaction goes within half the budget.
    assert (datastore.request_timeout, datastore.tx_timeout, datastore.commit_timeout) == (
        seconds,
        seconds / 2,
        seconds,
    )


def test_the_application_is_constructed_once_per_process(keyspace: str) -> None:
    client = DjangoClient()
    ids = {client.get("/health", headers=HTTPS).json()["application"] for _ in range(5)}
    assert ids == {bank_accounts().instance_id}


def test_plain_http_is_redirected_to_https_except_the_probes(keyspace: str) -> None:
    client = DjangoClient()
    response = client.post("/accounts", {"full_name": "Ada", "email_address": "a@example.com"}, "application/json")
    assert response.status_code == 301
    assert response.headers["Location"] == "https://testserver/accounts"
    assert client.get("/health").status_code == 200  # probes on the machine itself use plain HTTP
    assert client.get("/ready").status_code == 200
    secure = client.get("/health", headers=HTTPS)
    assert secure.headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"


@override_settings(ALLOWED_HOSTS=["bank.example.com"])
def test_a_request_for_another_host_is_refused(keyspace: str) -> None:
    response = DjangoClient().get("/health", headers={**HTTPS, "Host": "evil.example.com"})
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_an_oversized_body_is_413_and_changes_nothing(keyspace: str, count_events: Callable[[], int]) -> None:
    before = count_events()
    body = b'{"full_name": "' + b"N" * MAX_BODY_BYTES + b'", "email_address": "ada@example.com"}'
    response = DjangoClient().generic("POST", "/accounts", body, "application/json", headers=HTTPS)
    assert response.status_code == 413
    assert set(response.json()) == {"error"}
    assert count_events() == before
