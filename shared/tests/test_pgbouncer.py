"""The application's PostgreSQL store behind a real PgBouncer 1.18 (Debian's).

What these show, each through PgBouncer between this process and the test's
database:

- the application as configured cannot connect through PgBouncer in either
  pool mode: its connections carry their session limits as libpq ``options``
  (``statement_timeout``, see ``bankaccounts.postgres_store``), a startup
  parameter PgBouncer 1.18 refuses;
- eventsourcing's own store, which sends no ``options``, works under session
  pooling, writers outnumbering the server connections;
- under transaction pooling it fails: it prepares its statements (psycopg
  names them ``_pg3_0``, ``_pg3_1``... per client connection, and
  eventsourcing passes ``prepare=True``), and two clients whose transactions
  run on one server connection collide on a name.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy
from eventsourcing.persistence import OperationalError, ProgrammingError
from eventsourcing.postgres import PostgresDatastore

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts, construct_application, create_schema
from bankaccounts.config import ConfigurationError, DatabaseConfig
from bankaccounts.postgres_store import PostgresFactory
from cookbook_testing.databases import server_backends
from cookbook_testing.pgbouncer import PgBouncer, give_the_database_its_limits, pgbouncer_binary

pytestmark = pytest.mark.requires_postgresql


@pytest.fixture
def start_pgbouncer(database_url: str) -> Iterator[Callable[..., PgBouncer]]:
    """Start PgBouncer in front of this test's database server; stopped after the test."""
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    started: list[PgBouncer] = []

    def start(**options: Any) -> PgBouncer:
        started.append(pgbouncer := PgBouncer(database_url, **options).start())
        return pgbouncer

    yield start
    for pgbouncer in started:
        pgbouncer.stop()


def eventsourcing_store_env(database_url: str) -> dict[str, str]:
    """eventsourcing's own PostgreSQL store on ``database_url``, with the application's
    other limits: the application's settings without its statement timeout."""
    env = DatabaseConfig.from_url(database_url).eventsourcing_env()
    del env["POSTGRES_STATEMENT_TIMEOUT"]
    return {**env, "PERSISTENCE_MODULE": "eventsourcing.postgres"}


def open_and_deposit(application: BankAccounts, deposits: int) -> int:
    account_id = application.open_account("Ada", "ada@example.com").id
    for _ in range(deposits):
        application.deposit(account_id, 1, command_id=str(uuid.uuid4()))
    return application.get_account(account_id).balance


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_the_applications_connections_are_refused_for_their_startup_options(
    pool_mode: str, database_url: str, start_pgbouncer: Callable[..., PgBouncer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pgbouncer = start_pgbouncer(pool_mode=pool_mode)
    monkeypatch.setenv("DATABASE_URL", pgbouncer.url(database_url))
    # psycopg's pool logs the error, tries again, and gives up after its wait.
    with (
        pytest.raises(OperationalError, match=r"couldn't get a connection after 2\.00 sec"),
        construct_application() as application,
    ):
        open_and_deposit(application, 1)
    assert "unsupported startup parameter: options" in pgbouncer.log()


def test_eventsourcings_store_works_under_session_pooling(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer]
) -> None:
    """Four writers, each with an application of its own, at once."""
    pgbouncer = start_pgbouncer(pool_mode="session", pool_size=40)
    create_schema(eventsourcing_store_env(pgbouncer.url(database_url)))
    env = {**eventsourcing_store_env(pgbouncer.url(database_url)), **SCHEMA_EXISTS}
    balances: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with construct_application(env) as application:
                balances.append(open_and_deposit(application, 20))
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert balances == [20] * 4


def test_session_pooling_gives_a_client_a_server_connection_for_its_whole_session(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer]
) -> None:
    """So it saves no server connection: with one, a second application waits for the
    first's session to end, and gives up after its connection wait (2 s)."""
    pgbouncer = start_pgbouncer(pool_mode="session", pool_size=1)
    env = {**eventsourcing_store_env(pgbouncer.url(database_url)), "POSTGRES_POOL_SIZE": "1"}
    with construct_application(env) as first:
        assert open_and_deposit(first, 1) == 1
        with (
            pytest.raises(OperationalError, match=r"couldn't get a connection after 2\.00 sec"),
            construct_application(env) as second,
        ):
            open_and_deposit(second, 1)


#: What a client sees when its prepared statement's name meets another client's on a
#: server connection, or is missing from the one its transaction got.
PREPARED_STATEMENT_CLASHES = (psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName)


def test_eventsourcings_store_fails_under_transaction_pooling(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer]
) -> None:
    """Two applications, one connection each, take turns on PgBouncer's one server
    connection: each prepares its statements under the same names (``_pg3_0``...)."""
    pgbouncer = start_pgbouncer(pool_mode="transaction", pool_size=1)
    # A connection wait longer than the application's 2 s: this shows the clash, which a
    # pool slow to connect again on a loaded machine must not hide behind its timeout.
    env = {
        **eventsourcing_store_env(pgbouncer.url(database_url)),
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_CONNECT_TIMEOUT": "10",
    }
    clash = r'prepared statement "_pg3_\d+" (already exists|does not exist)'
    with (
        construct_application(env) as first,
        construct_application(env) as second,
        pytest.raises(ProgrammingError, match=clash) as raised,
    ):
        for _ in range(20):  # a new account each: one transaction, no lock
            first.open_account("Ada", "ada@example.com")
            second.open_account("Grace", "grace@example.com")
    assert isinstance(raised.value.__cause__, PREPARED_STATEMENT_CLASHES)


# --- PGBOUNCER_POOL_MODE: the application behind PgBouncer ---------------------


def datastore_of(application: BankAccounts) -> PostgresDatastore:
    factory = application.factory
    assert isinstance(factory, PostgresFactory)
    return factory.datastore


def test_under_session_pooling_the_limits_are_set_on_each_connection(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer], monkeypatch: pytest.MonkeyPatch
) -> None:
    pgbouncer = start_pgbouncer(pool_mode="session")
    monkeypatch.setenv("DATABASE_URL", pgbouncer.url(database_url))
    monkeypatch.setenv("PGBOUNCER_POOL_MODE", "session")
    with construct_application() as application:
        assert open_and_deposit(application, 3) == 3
        with datastore_of(application).get_connection() as connection:
            assert connection.execute("SHOW statement_timeout").fetchone() == {"statement_timeout": "10s"}


def test_under_transaction_pooling_a_role_without_limits_is_refused(
    database_url: str,
    start_pgbouncer: Callable[..., PgBouncer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each connection checks the limits the role gives it; none here: no connection, and
    the pool's log says which statements set them."""
    pgbouncer = start_pgbouncer(pool_mode="transaction")
    monkeypatch.setenv("DATABASE_URL", pgbouncer.url(database_url))
    monkeypatch.setenv("PGBOUNCER_POOL_MODE", "transaction")
    with (
        pytest.raises(OperationalError, match=r"couldn't get a connection after 2\.00 sec"),
        construct_application() as application,
    ):
        open_and_deposit(application, 1)
    assert "ALTER ROLE postgres SET statement_timeout = '10000ms';" in caplog.text


def test_under_transaction_pooling_writers_share_few_server_connections(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four applications write at once through at most eight server connections: each
    command holds two at a time (its lock's transaction and its write's), so PgBouncer's
    pool must have twice as many as the commands that may run at once, or they wait."""
    give_the_database_its_limits(database_url)
    pgbouncer = start_pgbouncer(pool_mode="transaction", pool_size=8)
    monkeypatch.setenv("DATABASE_URL", pgbouncer.url(database_url))
    monkeypatch.setenv("PGBOUNCER_POOL_MODE", "transaction")
    create_schema()
    balances: list[int] = []
    errors: list[BaseException] = []
    applications = [construct_application(SCHEMA_EXISTS) for _ in range(4)]

    def writer(application: BankAccounts) -> None:
        try:
            balances.append(open_and_deposit(application, 20))
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(application,)) for application in applications]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    clients = sum(datastore_of(application).pool.get_stats()["pool_size"] for application in applications)
    servers = len(server_backends(database_url))
    for application in applications:
        application.close()
    assert errors == []
    assert balances == [20] * 4
    assert servers <= 8
    print(f"transaction pooling: {clients} client connections on {servers} server sessions")


def test_a_statement_queued_in_pgbouncer_waits_for_its_query_wait_timeout_and_is_tried_again(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While every server connection is taken, PgBouncer queues a client's statement, and
    PostgreSQL's statement_timeout has not started: PgBouncer's ``query_wait_timeout``
    (120 s by default; 2 s here) ends that wait by closing the client's connection.
    eventsourcing's recorders try the statement again (10 times, 0.2 s apart): here the
    one server connection comes free after 5 s, and the deposit is applied, once."""
    give_the_database_its_limits(database_url)
    pgbouncer = start_pgbouncer(pool_mode="transaction", pool_size=1, query_wait_timeout=2)
    monkeypatch.setenv("DATABASE_URL", pgbouncer.url(database_url))
    monkeypatch.setenv("PGBOUNCER_POOL_MODE", "transaction")
    create_schema()
    with construct_application(SCHEMA_EXISTS) as application:
        account = application.open_account("Ada", "ada@example.com")
        holder = psycopg.connect(pgbouncer.url(database_url), autocommit=True)
        try:
            # The one server connection, held by a transaction that PostgreSQL ends after 5 s idle.
            holder.execute("SET idle_in_transaction_session_timeout = '5s'")
            holder.execute("BEGIN")
            holder.execute("SELECT 1")
            started = time.monotonic()
            balance = application.deposit(account.id, 1, command_id=str(uuid.uuid4())).balance
            seconds = time.monotonic() - started
        finally:
            holder.close()  # not a commit: PostgreSQL has ended its session
        assert application.get_account(account.id).balance == balance == 1
    assert "closing because: query_wait_timeout (age=2s)" in pgbouncer.log()
    assert 4 <= seconds < 15, seconds
    print(f"a deposit queued in PgBouncer behind a held connection: applied after {seconds:.1f}s")


# --- SQLAlchemy's and Django's connections (not autocommit) behind PgBouncer ----


def connection_like_sqlalchemy_s(url: str, environ: dict[str, str]) -> psycopg.Connection[Any]:
    """A connection opened as the SQLAlchemy and Django recipes open theirs: with
    ``connect_args``, not in autocommit, then ``new_connection_setup`` run on it."""
    config = DatabaseConfig.from_url(url)
    connection = psycopg.connect(url, **config.connect_args(environ))
    setup = config.new_connection_setup(environ)
    assert setup is not None
    try:
        setup(connection)
    except BaseException:
        connection.close()
        raise
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # nothing left open
    return connection


def test_sqlalchemy_s_and_django_s_connections_get_their_limits_under_session_pooling(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer]
) -> None:
    pgbouncer = start_pgbouncer(pool_mode="session")
    url = pgbouncer.url(database_url)
    with connection_like_sqlalchemy_s(url, {"PGBOUNCER_POOL_MODE": "session"}) as connection:
        limits = connection.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        assert limits.fetchone() == ("10s", "10s")


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_an_sqlalchemy_engine_sets_up_each_connection_it_opens(
    pool_mode: str, database_url: str, start_pgbouncer: Callable[..., PgBouncer]
) -> None:
    """``DatabaseConfig.set_up_sqlalchemy_connections``, as the SQLAlchemy recipes call it:
    each connection the engine opens gets its limits (session pooling) or is refused
    without the role's (transaction pooling), every time it is asked for."""
    environ = {"PGBOUNCER_POOL_MODE": pool_mode}
    config = DatabaseConfig.from_url(start_pgbouncer(pool_mode=pool_mode).url(database_url))
    engine = sqlalchemy.create_engine(config.sqlalchemy_url(), connect_args=config.connect_args(environ))
    config.set_up_sqlalchemy_connections(engine, environ)
    try:
        if pool_mode == "session":
            with engine.connect() as connection:
                assert connection.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar() == "10s"
        else:
            for _ in range(2):
                with pytest.raises(ConfigurationError, match="the role has none"), engine.connect():
                    pass
    finally:
        engine.dispose()


def test_sqlalchemy_s_and_django_s_connections_check_the_role_s_limits_under_transaction_pooling(
    database_url: str, start_pgbouncer: Callable[..., PgBouncer]
) -> None:
    """Refused while the role (or database) has none of the limits, with the statements
    to run; served once it has them, and no statement prepared however often it runs.
    A server connection keeps the settings it started with: PgBouncer's, opened before
    the limits were set, lack them until it is replaced (here: another PgBouncer)."""
    environ = {"PGBOUNCER_POOL_MODE": "transaction"}
    before = start_pgbouncer(pool_mode="transaction")
    with pytest.raises(ConfigurationError, match=r"ALTER ROLE postgres SET lock_timeout = '10000ms';"):
        connection_like_sqlalchemy_s(before.url(database_url), environ)
    give_the_database_its_limits(database_url)
    with pytest.raises(ConfigurationError, match="the role has none for statement_timeout"):
        connection_like_sqlalchemy_s(before.url(database_url), environ)
    after = start_pgbouncer(pool_mode="transaction")
    with connection_like_sqlalchemy_s(after.url(database_url), environ) as connection:
        for _ in range(10):  # psycopg prepares a statement at its fifth run, unless told not to
            prepared = connection.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert prepared == (0,)
        assert connection.execute("SELECT current_setting('lock_timeout')").fetchone() == ("10s",)
        connection.commit()
