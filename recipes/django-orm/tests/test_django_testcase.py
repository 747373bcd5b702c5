"""The application in Django's own ``TestCase``, through ``bank.testing.BankAccountsTestCase``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import connections

from bank.accounts import bank_accounts
from bank.models import AuditEntry
from bank.testing import BankAccountsTestCase
from eventstore.models import StoredEventRecord

HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module", autouse=True)
def _one_database_for_the_module(
    make_database_url: Callable[[], str], migrated: Callable[[str], None]
) -> Iterator[None]:
    """Django's TestCase opens its transaction in setUpClass, before any function-scoped fixture."""
    migrated(make_database_url())
    yield
    connections.close_all()


class TestBankAccountsTestCase(BankAccountsTestCase):
    constructed: list[str] = []

    def setUp(self) -> None:
        super().setUp()
        # Every test starts without the events earlier tests saved: they were rolled back.
        self.assertEqual(StoredEventRecord.objects.count(), 0)
        self.constructed.append(self.bank.instance_id)

    def test_the_application_is_the_process_application(self) -> None:
        self.assertIs(bank_accounts(), self.bank)
        self.bank.open_account("Ada", "ada@example.com")
        self.assertEqual(StoredEventRecord.objects.count(), 1)

    def test_views_use_the_same_application_and_transaction(self) -> None:
        response = self.client.post(
            "/accounts", {"full_name": "Ada", "email_address": "ada@example.com"}, "application/json", headers=HTTPS
        )
        self.assertEqual(response.status_code, 201)
        self.assertEqual(self.bank.get_account(response.json()["id"]).full_name, "Ada")
        self.assertEqual(AuditEntry.objects.count(), 1)
        health = self.client.get("/health", headers=HTTPS).json()
        self.assertEqual(health["application"], self.bank.instance_id)

    def test_each_test_constructs_its_own_application(self) -> None:
        self.bank.open_account("Grace", "grace@example.com")
        self.assertEqual(len(set(self.constructed)), len(self.constructed))
