"""A base class for Django tests of code that uses the application.

``manage.py test`` (Django's runner) and pytest both run it. Django's
``TestCase`` wraps each test in a transaction and rolls it back afterwards;
the event store writes through Django's connection, so each test's events
are rolled back with everything else it wrote.
"""

from __future__ import annotations

from django.test import TestCase

from bank.accounts import DjangoBankAccounts, close_bank_accounts, init_bank_accounts


class BankAccountsTestCase(TestCase):
    """Each test gets this process's application: constructed in setUp, closed in tearDown."""

    bank: DjangoBankAccounts

    def setUp(self) -> None:
        super().setUp()
        self.bank = init_bank_accounts()

    def tearDown(self) -> None:
        close_bank_accounts()
        super().tearDown()
