"""In-process tests with Django's test client: the contract, and the request's transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from uuid import UUID

import pytest
from django.db import connections, transaction
from django.http import HttpRequest, JsonResponse
from django.test import Client as DjangoClient
from django.test import override_settings
from django.urls import path
from eventsourcing.persistence import IntegrityError

from bank.accounts import DjangoBankAccounts, bank_accounts
from bank.api import api_view
from bank.models import AuditEntry
from bank.transactions import atomic_with_retries, run_in_transaction
from bankaccounts.domain import Account
from bankaccounts.web import MAX_BODY_BYTES
from config import urls as project_urls
from cookbook_testing.contract import HttpContract

HTTPS = {"X-Forwarded-Proto": "https"}


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the Django project in this process."""


def open_account(client: DjangoClient) -> dict[str, object]:
    response = client.post(
        "/accounts", {"full_name": "Ada", "email_address": "ada@example.com"}, "application/json", headers=HTTPS
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_events_and_orm_rows_commit_together(django_database: str, count_events: Callable[[], int]) -> None:
    client = DjangoClient()
    account = open_account(client)
    for _ in range(2):  # sent again with its key: answered, and nothing more is written
        headers = {**HTTPS, "Idempotency-Key": "deposit-1"}
        response = client.post(
            f"/accounts/{account['id']}/deposit", {"amount": 100}, "application/json", headers=headers
        )
        assert response.status_code == 200
    assert count_events() == 4  # each write's event, and its command's record
    assert AuditEntry.objects.count() == 2


@api_view("POST")
@atomic_with_retries
def deposit_then_fail(request: HttpRequest, account_id: str) -> JsonResponse:
    account = bank_accounts().get_account(UUID(account_id))
    account.deposit(100)
    bank_accounts().save(account)  # the INSERT has run, inside the view's transaction
    AuditEntry.objects.create(action="deposit", account_id=account.id)
    raise RuntimeError("something failed after the events were saved")


@override_settings(ROOT_URLCONF=__name__)
def test_a_view_that_fails_after_saving_events_stores_nothing(
    django_database: str, count_events: Callable[[], int]
) -> None:
    client = DjangoClient(raise_request_exception=False)  # answer 500, as in production
    account = open_account(client)
    events, rows = count_events(), AuditEntry.objects.count()

    response = client.post(f"/accounts/{account['id']}/deposit-then-fail", headers=HTTPS)

    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}
    assert count_events() == events
    assert AuditEntry.objects.count() == rows
    assert client.get(f"/accounts/{account['id']}", headers=HTTPS).json() == account


# This module is also the URLconf of the test above: the project's, plus a view that fails.
urlpatterns = [*project_urls.urlpatterns, path("accounts/<str:account_id>/deposit-then-fail", deposit_then_fail)]
handler500 = project_urls.handler500


def test_a_conflict_rolls_back_and_reruns_the_whole_unit_of_work(bank: DjangoBankAccounts) -> None:
    account_id = run_in_transaction(lambda: bank.open_account("Ada", "ada@example.com")).id
    stale = bank.get_account(account_id)  # version 1
    run_in_transaction(lambda: bank.deposit(account_id, 5))  # another request commits version 2
    attempts: list[int] = []

    def deposit() -> Account:
        attempts.append(len(attempts) + 1)
        AuditEntry.objects.create(action="deposit", account_id=account_id)
        # The first attempt works from the stale copy, so its version 2 must conflict.
        account = stale if len(attempts) == 1 else bank.get_account(account_id)
        account.deposit(10)
        bank.save(account)
        return account

    result = run_in_transaction(deposit)

    assert attempts == [1, 2]
    assert (result.balance, result.version) == (15, 3)
    assert AuditEntry.objects.count() == 1  # the rolled-back attempt left no audit row


def test_inside_a_transaction_it_does_not_own_a_conflict_goes_to_the_owner(bank: DjangoBankAccounts) -> None:
    account_id = run_in_transaction(lambda: bank.open_account("Ada", "ada@example.com")).id
    stale = bank.get_account(account_id)
    run_in_transaction(lambda: bank.deposit(account_id, 5))
    attempts: list[int] = []

    def deposit() -> Account:
        attempts.append(1)
        stale.deposit(10)
        bank.save(stale)
        return stale

    with pytest.raises(IntegrityError), transaction.atomic():  # the owner, e.g. ATOMIC_REQUESTS
        AuditEntry.objects.create(action="deposit", account_id=account_id)
        run_in_transaction(deposit)

    assert attempts == [1]  # not retried: only the owner can roll everything back
    assert AuditEntry.objects.count() == 0
    assert bank.get_account(account_id).balance == 5


def test_concurrent_deposits_from_threads_are_all_recorded(django_database: str) -> None:
    """Each thread has its own Django connection: real concurrent transactions, real conflicts on PostgreSQL."""
    account = open_account(DjangoClient())
    threads, deposits_per_thread = 6, 15
    statuses: list[int] = []

    def deposit_repeatedly() -> None:
        client = DjangoClient()
        try:
            for _ in range(deposits_per_thread):
                response = client.post(
                    f"/accounts/{account['id']}/deposit", {"amount": 3}, "application/json", headers=HTTPS
                )
                statuses.append(response.status_code)
        finally:
            connections.close_all()  # this thread's connection

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


def test_the_application_is_constructed_once_per_process(django_database: str) -> None:
    client = DjangoClient()
    ids = {client.get("/health", headers=HTTPS).json()["application"] for _ in range(5)}
    assert ids == {bank_accounts().instance_id}


def test_plain_http_is_redirected_to_https_except_the_probes(django_database: str) -> None:
    client = DjangoClient()
    response = client.post("/accounts", {"full_name": "Ada", "email_address": "a@example.com"}, "application/json")
    assert response.status_code == 301
    assert response.headers["Location"] == "https://testserver/accounts"
    assert client.get("/health").status_code == 200  # probes on the machine itself use plain HTTP
    assert client.get("/ready").status_code == 200
    secure = client.get("/health", headers=HTTPS)
    assert secure.headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"


@override_settings(ALLOWED_HOSTS=["bank.example.com"])
def test_a_request_for_another_host_is_refused(django_database: str) -> None:
    response = DjangoClient().get("/health", headers={**HTTPS, "Host": "evil.example.com"})
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_an_oversized_body_is_413_and_changes_nothing(django_database: str, count_events: Callable[[], int]) -> None:
    body = b'{"full_name": "' + b"N" * MAX_BODY_BYTES + b'", "email_address": "ada@example.com"}'
    response = DjangoClient().generic("POST", "/accounts", body, "application/json", headers=HTTPS)
    assert response.status_code == 413
    assert set(response.json()) == {"error"}
    assert count_events() == 0
