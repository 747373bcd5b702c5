"""In-process tests with Django's test client: the contract, conflicts, and the production settings."""

from __future__ import annotations

import pytest

from bank.accounts import bank_accounts
from bankaccounts.application import BankAccounts
from bankaccounts.timeouts import request_timeout
from cookbook_testing.contract import HttpContract
from cookbook_testing.django_checks import DjangoSiteChecks
from eventsourcing_cassandra.factory import CassandraFactory


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the Django project in this process."""


class TestSite(DjangoSiteChecks):
    """The test kit's checks of a Django project in this process, on this test's keyspace."""

    @pytest.fixture
    def django_store(self, keyspace: str) -> str:
        return keyspace

    def process_application(self) -> BankAccounts:
        return bank_accounts()


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
