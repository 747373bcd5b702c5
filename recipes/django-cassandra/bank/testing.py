"""A base class for Django tests of code that uses the application.

``manage.py test`` (Django's runner) and pytest both run it. It is a
``SimpleTestCase``: the project has no SQL database for Django to wrap each
test in a transaction, and Cassandra has no transaction to roll back. Give
each test run a keyspace of its own instead (``CASSANDRA_KEYSPACE``), created
with ``python manage.py create_event_store`` and dropped afterwards; tests
then tell their data apart by the ids they create.
"""

from __future__ import annotations

from django.test import SimpleTestCase

from bank.accounts import close_bank_accounts, init_bank_accounts
from bankaccounts.application import BankAccounts


class BankAccountsTestCase(SimpleTestCase):
    """Each test gets this process's application: constructed in setUp, closed (with its session) in tearDown."""

    bank: BankAccounts

    def setUp(self) -> None:
        super().setUp()
        self.bank = init_bank_accounts()

    def tearDown(self) -> None:
        close_bank_accounts()
        super().tearDown()
