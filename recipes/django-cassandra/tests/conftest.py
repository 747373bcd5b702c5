"""Django set up once for the test session, on a real Cassandra node; keyspaces of their own.

The settings are the production ones (``config/settings.py``), with a secret
key generated for this run: none is kept in the repository. The node comes
from ``cassandra_testing.plugin`` (or is the cluster ``CASSANDRA_HOSTS``
names). Each test module in-process, and each server, gets a keyspace of its
own, made as a user makes it (``manage.py create_event_store``) and dropped
afterwards. Tests inside one module tell their data apart by the account ids
they create, exactly as the contract's tests against one server do.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import django
import pytest

# The production settings, whatever this shell has set, with a secret key of
# its own if it has none.
for name in [name for name in os.environ if name.startswith("DJANGO_") and name != "DJANGO_SECRET_KEY"]:
    del os.environ[name]
os.environ.pop("ALLOWED_HOSTS", None)
os.environ.pop("CASSANDRA_KEYSPACE", None)  # every test says which keyspace it uses
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
# Cassandra's jars (about 95 MB from Maven Central): share the cache of the
# cassandra/ package beside this recipe, which is warm once its tests have run,
# unless CASSANDRA_CACHE_DIR says where (a CI cache).
os.environ.setdefault("CASSANDRA_CACHE_DIR", str(Path(__file__).resolve().parents[3] / "cassandra" / ".cache"))
django.setup()

from cassandra import ConsistencyLevel  # noqa: E402
from cassandra.query import SimpleStatement  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client as DjangoClient  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

# What Django's own test runner does first; among other things it allows the
# test client's host name, "testserver".
setup_test_environment()

from bank.accounts import close_bank_accounts  # noqa: E402
from cookbook_testing.faults import StoreBehindAProxy  # noqa: E402
from cookbook_testing.http import Client, Response  # noqa: E402
from cookbook_testing.servers import ServerProcess  # noqa: E402

pytest_plugins = ["cookbook_testing.plugin", "cassandra_testing.plugin"]

RECIPE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def recipe_dir() -> Path:
    """The folder holding manage.py, uwsgi.ini and gunicorn.conf.py."""
    return RECIPE_DIR


@pytest.fixture(scope="session")
def events_table() -> str:
    return "events"


@pytest.fixture
def store_behind_a_fault_proxy(cassandra_store_behind_a_fault_proxy: StoreBehindAProxy) -> StoreBehindAProxy:
    """The node, reached through a fault proxy, for the stand-alone checks' database faults."""
    return cassandra_store_behind_a_fault_proxy


# --- keyspaces ------------------------------------------------------------------


@pytest.fixture(scope="session")
def new_keyspace(cassandra_admin: Any) -> Callable[[], Any]:
    """``with new_keyspace() as name:`` a fresh keyspace name, dropped at the end of the block.

    The keyspace itself is created by whoever uses the name first, as in
    production: ``manage.py create_event_store``.
    """

    @contextmanager
    def make() -> Iterator[str]:
        name = f"test_{uuid.uuid4().hex[:20]}"
        try:
            yield name
        finally:
            cassandra_admin.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)

    return make


@pytest.fixture(scope="session")
def count_rows_in(cassandra_admin: Any, events_table: str) -> Callable[[str], int]:
    """How many events a keyspace holds, read straight from Cassandra."""

    def count(keyspace: str) -> int:
        statement = SimpleStatement(
            f"SELECT COUNT(*) FROM {keyspace}.{events_table}", consistency_level=ConsistencyLevel.LOCAL_QUORUM
        )
        return int(cassandra_admin.execute(statement, timeout=60).one()[0])

    return count


def eventstore_env(hosts: str, keyspace: str) -> dict[str, str]:
    return {**settings.EVENTSOURCING_ENV, "CASSANDRA_HOSTS": hosts, "CASSANDRA_KEYSPACE": keyspace}


@pytest.fixture(scope="module")
def module_keyspace(cassandra_hosts_setting: str, new_keyspace: Callable[[], Any]) -> Iterator[str]:
    """This module's keyspace, with the event store's tables, as Django's settings name it."""
    with (
        new_keyspace() as keyspace,
        override_settings(EVENTSOURCING_ENV=eventstore_env(cassandra_hosts_setting, keyspace)),
    ):
        call_command("create_event_store", verbosity=0)
        yield keyspace


@pytest.fixture
def keyspace(module_keyspace: str) -> str:
    return module_keyspace


@pytest.fixture
def count_events(keyspace: str, count_rows_in: Callable[[str], int]) -> Callable[[], int]:
    return lambda: count_rows_in(keyspace)


@pytest.fixture(autouse=True)
def _no_application_left_behind() -> Iterator[None]:
    """Each test that constructs the process's application (e.g. through a view) gets its own."""
    yield
    close_bank_accounts()


class DjangoTestClient(Client):
    """Adapts Django's test client to the contract suite's client.

    Every request carries ``X-Forwarded-Proto: https``, as it would behind the
    TLS proxy the production settings expect (they redirect plain HTTP).
    """

    def __init__(self, client: DjangoClient) -> None:
        self.client = client

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        response = self.client.generic(
            method,
            path,
            data=body or b"",
            content_type=headers.get("Content-Type", "application/octet-stream"),
            headers={"X-Forwarded-Proto": "https", **{k: v for k, v in headers.items() if k != "Content-Type"}},
        )
        return Response(
            status=response.status_code,
            body=response.content,
            headers={name.lower(): value for name, value in response.headers.items()},
        )


@pytest.fixture
def api(keyspace: str) -> Client:
    return DjangoTestClient(DjangoClient())


# --- servers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_env(cassandra_hosts_setting: str) -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": os.environ["DJANGO_SECRET_KEY"],
        # The test kit's HTTP client speaks plain HTTP and cannot add the
        # proxy's X-Forwarded-Proto header, so the servers must not redirect.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "CASSANDRA_HOSTS": cassandra_hosts_setting,
    }


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run manage.py from the recipe folder, as a user would."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=RECIPE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class CassandraServer(ServerProcess):
    """The recipe's server on a keyspace of its own (this recipe reads no ``DATABASE_URL``)."""

    def __init__(
        self, kind: str, *, keyspace: str, extra_env: dict[str, str], args: list[str] | None, workers: int = 4
    ) -> None:
        super().__init__(
            kind,
            RECIPE_DIR,
            database_url="",
            extra_env={**extra_env, "CASSANDRA_KEYSPACE": keyspace},
            args=args,
            workers=workers,
        )
        self.keyspace = keyspace


@pytest.fixture(scope="session")
def launch(server_env: dict[str, str]) -> Callable[..., CassandraServer]:
    """Create the keyspace's tables as a user would (manage.py create_event_store), then start
    the server; ``extra_env`` adds to (or replaces) the server's settings, not the tables'."""

    def start(
        kind: str,
        keyspace: str,
        args: list[str] | None,
        extra_env: dict[str, str] | None = None,
        workers: int = 4,
        until: Callable[[CassandraServer], bool] | None = None,
    ) -> CassandraServer:
        env = {**server_env, "CASSANDRA_KEYSPACE": keyspace}
        result = manage("create_event_store", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        server = CassandraServer(
            kind, keyspace=keyspace, extra_env={**server_env, **(extra_env or {})}, args=args, workers=workers
        )
        return server.start(until=None if until is None else lambda: until(server))

    return start


# The test kit's server fixtures, each server on a keyspace of its own instead of a database.


@pytest.fixture(scope="class")
def server(
    server_kind: str,
    server_args: list[str] | None,
    new_keyspace: Callable[[], Any],
    launch: Callable[..., CassandraServer],
) -> Iterator[CassandraServer]:
    """One running server shared by a test class (4 workers, its own keyspace)."""
    with new_keyspace() as keyspace:
        running = launch(server_kind, keyspace, server_args)
        try:
            yield running
        finally:
            running.__exit__()


@pytest.fixture
def start_server(
    server_kind: str,
    server_args: list[str] | None,
    new_keyspace: Callable[[], Any],
    launch: Callable[..., CassandraServer],
) -> Iterator[Callable[..., CassandraServer]]:
    """Start the recipe's server on a new keyspace; stopped (then the keyspace dropped) after the test."""
    with ExitStack() as cleanup:

        def start(
            *,
            until: Callable[[CassandraServer], bool] | None = None,
            args: list[str] | None = None,
            extra_env: dict[str, str] | None = None,
            workers: int = 4,
            database_url: str = "",  # the test kit's; this recipe reads no DATABASE_URL
        ) -> CassandraServer:
            keyspace = cleanup.enter_context(new_keyspace())
            server = launch(server_kind, keyspace, args or server_args, extra_env, workers, until)
            cleanup.callback(server.__exit__)
            return server

        yield start
