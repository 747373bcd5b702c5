"""In-process tests with Flask's test client: the contract, and the worker's lifecycle."""

from __future__ import annotations

import pytest
from flask import Flask

from bank.accounts import bank, start_worker, stop_worker
from bankaccounts.slot import ApplicationAlreadyInitialisedError
from bankaccounts.timeouts import request_timeout
from cookbook_testing.contract import HttpContract
from eventsourcing_cassandra.datastore import CassandraDatastore
from eventsourcing_cassandra.factory import CassandraFactory


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the Flask app in this process."""


def datastore() -> CassandraDatastore:
    factory = bank().factory
    assert isinstance(factory, CassandraFactory)
    return factory.datastore


def test_a_worker_is_connected_before_its_first_request(app: Flask) -> None:
    assert datastore().is_connected


def test_stopping_the_worker_shuts_its_cluster_down(app: Flask) -> None:
    store = datastore()
    session = store.session()  # the session start_worker() opened
    stop_worker()
    assert session.cluster.is_shutdown  # type: ignore[has-type]  # the driver's import cycles hide its type
    assert not store.is_connected
    start_worker()  # for the fixture's own stop_worker()


def test_the_stores_waits_fit_in_the_request_timeout(app: Flask) -> None:
    seconds = request_timeout()
    # Not the store's own 15 s, 10 s and 30 s: a dead writer's transaction goes within half the budget.
    assert (datastore().request_timeout, datastore().tx_timeout, datastore().commit_timeout) == (
        seconds,
        seconds / 2,
        seconds,
    )


def test_a_second_start_in_one_process_is_refused(app: Flask) -> None:
    with pytest.raises(ApplicationAlreadyInitialisedError):
        start_worker()


def test_the_application_is_constructed_once_per_process(app: Flask) -> None:
    client = app.test_client()
    ids = {client.get("/health").get_json()["application"] for _ in range(5)}
    assert ids == {bank().instance_id}
