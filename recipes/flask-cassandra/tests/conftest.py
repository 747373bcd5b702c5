"""Fixtures: a real Cassandra (a node started for the session, or CASSANDRA_HOSTS's
cluster) and a keyspace of its own for each app and each server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement
from flask import Flask
from flask.testing import FlaskClient

from bank import create_app
from bank.accounts import create_schema, start_worker, stop_worker
from cookbook_testing.faults import StoreBehindAProxy
from cookbook_testing.http import Client, Response
from cookbook_testing.servers import ServerProcess

pytest_plugins = ["cookbook_testing.plugin", "cassandra_testing.plugin"]


@pytest.fixture(scope="session")
def recipe_dir() -> Path:
    """The folder holding uwsgi.ini and gunicorn.conf.py, for the stand-alone checks."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def store_behind_a_fault_proxy(cassandra_store_behind_a_fault_proxy: StoreBehindAProxy) -> StoreBehindAProxy:
    """The node, reached through a fault proxy, for the stand-alone checks' database faults."""
    return cassandra_store_behind_a_fault_proxy


@pytest.fixture(scope="session")
def events_table() -> str:
    return "events"


@pytest.fixture(scope="session")
def count_events_in(cassandra_admin: Any, events_table: str) -> Callable[[str], int]:
    """Counts the rows of a keyspace's events table, read straight from Cassandra.

    Every row counts, committed or not, so "a refused request writes nothing"
    is checked at its strictest. QUORUM, as the store writes: exact on a cluster too.
    """

    def count(keyspace: str) -> int:
        statement = SimpleStatement(
            f"SELECT COUNT(*) FROM {keyspace}.{events_table}", consistency_level=ConsistencyLevel.LOCAL_QUORUM
        )
        return int(cassandra_admin.execute(statement, timeout=60).one()[0])

    return count


@pytest.fixture(scope="session")
def new_keyspace(cassandra_admin: Any) -> Iterator[Callable[[], str]]:
    """Names a keyspace for the recipe to create itself (as it would in production);
    every keyspace named is dropped when the session ends, after the servers stopped."""
    names: list[str] = []

    def new() -> str:
        names.append(f"test_{uuid.uuid4().hex[:20]}")
        return names[-1]

    yield new
    for name in names:
        cassandra_admin.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)


@pytest.fixture(scope="class")
def server_env(server_kind: str, cassandra_hosts_setting: str, new_keyspace: Callable[[], str]) -> dict[str, str]:
    """The class's server, one per server kind, on a keyspace of its own."""
    return {"CASSANDRA_HOSTS": cassandra_hosts_setting, "CASSANDRA_KEYSPACE": new_keyspace()}


@pytest.fixture
def start_server(
    start_server: Callable[..., ServerProcess], new_keyspace: Callable[[], str]
) -> Callable[..., ServerProcess]:
    """The test kit's ``start_server``, with a new keyspace for every server started."""

    def start(**kwargs: Any) -> ServerProcess:
        extra_env = {"CASSANDRA_KEYSPACE": new_keyspace(), **kwargs.pop("extra_env", {})}
        return start_server(extra_env=extra_env, **kwargs)

    return start


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
def count_events(keyspace: str, count_events_in: Callable[[str], int]) -> Callable[[], int]:
    return lambda: count_events_in(keyspace)


class FlaskTestClient(Client):
    """Adapts Flask's test client to the contract suite's client interface."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        response = self.client.open(path, method=method, data=body, headers=headers)
        return Response(
            status=response.status_code,
            body=response.get_data(),
            headers={k.lower(): v for k, v in response.headers.items()},
        )


@pytest.fixture
def api(app: Flask) -> Client:
    return FlaskTestClient(app.test_client())
