"""The application in a Django test case, through ``bank.testing.BankAccountsTestCase``."""

from __future__ import annotations

import pytest

from bank.accounts import bank_accounts
from bank.testing import BankAccountsTestCase

HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.mark.usefixtures("module_keyspace")  # what CASSANDRA_KEYSPACE does for `manage.py test`
class TestBankAccountsTestCase(BankAccountsTestCase):
    constructed: list[str] = []

    def setUp(self) -> None:
        super().setUp()
        self.constructed.append(self.bank.instance_id)

    def test_the_application_is_the_process_application(self) -> None:
        self.assertIs(bank_accounts(), self.bank)
        account = self.bank.open_account("Ada", "ada@example.com")
        self.assertEqual(self.bank.get_account(account.id).full_name, "Ada")

    def test_views_use_the_same_application(self) -> None:
        response = self.client.post(
            "/accounts", {"full_name": "Ada", "email_address": "ada@example.com"}, "application/json", headers=HTTPS
        )
        self.assertEqual(response.status_code, 201)
        self.assertEqual(self.bank.get_account(response.json()["id"]).full_name, "Ada")
        health = self.client.get("/health", headers=HTTPS).json()
        self.assertEqual(health["application"], self.bank.instance_id)

    def test_each_test_constructs_its_own_application(self) -> None:
        self.bank.open_account("Grace", "grace@example.com")
        self.assertEqual(len(set(self.constructed)), len(self.constructed))

    def test_the_session_closes_with_the_test(self) -> None:
        self.bank.open_account("Grace", "grace@example.com")  # the session opens on first use
        datastore = self.bank.factory.datastore  # type: ignore[attr-defined]  # the Cassandra factory's
        self.assertTrue(datastore.is_connected)
        self.addCleanup(lambda: self.assertFalse(datastore.is_connected))  # after tearDown closed it
