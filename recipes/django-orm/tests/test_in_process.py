"""In-process tests with Django's test client: the contract, and the request's transaction."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.test import Client as DjangoClient
from django.test import override_settings
from django.urls import path
from eventsourcing.persistence import IntegrityError

from bank.accounts import DjangoBankAccounts, bank_accounts
from bank.api import api_view
from bank.models import AuditEntry
from bank.transactions import atomic_with_retries, run_in_transaction
from bankaccounts.application import BankAccounts
from bankaccounts.domain import Account
from config import urls as project_urls
from cookbook_testing.contract import HttpContract, assert_refused_commands_write_no_rows
from cookbook_testing.django_checks import HTTPS, DjangoSiteChecks, open_account
from cookbook_testing.http import Client


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the Django project in this process."""


def test_a_refused_command_leaves_no_audit_row(api: Client) -> None:
    # The audit row goes in before the command runs (bank.commands.apply_once).
    assert_refused_commands_write_no_rows(api, AuditEntry.objects.count)


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


class TestSite(DjangoSiteChecks):
    """The test kit's checks of a Django project in this process, on this test's database."""

    deposits_per_thread = 15  # each thread has its own connection: real concurrent transactions

    @pytest.fixture
    def django_store(self, django_database: str) -> str:
        return django_database

    def process_application(self) -> BankAccounts:
        return bank_accounts()
