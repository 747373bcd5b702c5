"""Fixtures: a real Cassandra (a node started for the session, or CASSANDRA_HOSTS's
cluster) and a keyspace of its own for each app; the test kit gives each server
one too (cassandra_testing.plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest
from flask import Flask

from bank import create_app
from bank.accounts import create_schema, start_worker, stop_worker
from cookbook_testing.http import Client, FlaskTestClient

pytest_plugins = ["cookbook_testing.plugin", "cassandra_testing.plugin"]


@pytest.fixture(scope="module")
def keyspace(cassandra_hosts_setting: str, new_keyspace: Callable[[], str]) -> str:
    """A keyspace for one test module, created with its tables by ``create_schema()``,
    as a server's master creates them. Tables once per module, not per test:
    schema changes are the slowest thing Cassandra does."""
    name = new_keyspace()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CASSANDRA_HOSTS", cassandra_hosts_setting)
        env.setenv("CASSANDRA_KEYSPACE", name)
        create_schema()
    return name


@pytest.fixture
def app(cassandra_hosts_setting: str, keyspace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A Flask app, and this process's application started as a worker's is (with a
    Cassandra session of its own); closed after the test, so each test has its own."""
    monkeypatch.setenv("CASSANDRA_HOSTS", cassandra_hosts_setting)
    monkeypatch.setenv("CASSANDRA_KEYSPACE", keyspace)
    start_worker()
    try:
        yield create_app({"TESTING": True})
    finally:
        stop_worker()


@pytest.fixture
def count_events(keyspace: str, count_cassandra_events: Callable[[Mapping[str, str]], int]) -> Callable[[], int]:
    return lambda: count_cassandra_events({"CASSANDRA_KEYSPACE": keyspace})


@pytest.fixture
def api(app: Flask) -> Client:
    return FlaskTestClient(app.test_client())
