from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bankaccounts.application import BankAccounts
from bankaccounts.config import ConfigurationError, DatabaseConfig, application_env


def test_unset_means_an_sqlite_file_under_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = DatabaseConfig.from_env({})
    assert config.store == "sqlite"
    assert config.sqlite_path == tmp_path / "var" / "bankaccounts.sqlite3"
    env = config.eventsourcing_env()
    assert env == {"PERSISTENCE_MODULE": "bankaccounts.sqlite_store", "SQLITE_DBNAME": str(config.sqlite_path)}
    assert not (tmp_path / "var").exists()  # reading a setting creates nothing
    with BankAccounts(env=env):
        assert (tmp_path / "var").is_dir()  # the store creates its folder when constructed


def test_a_recipe_naming_its_own_persistence_module_gets_it_and_database_url_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    own = {"PERSISTENCE_MODULE": "eventsourcing_cassandra", "CASSANDRA_KEYSPACE": "bank"}
    # A URL no SQL store accepts: reading it would raise ConfigurationError.
    assert application_env(own, {"DATABASE_URL": "mysql://db/bank"}) == own
    assert application_env({"X": "1"}, {"PERSISTENCE_MODULE": "eventsourcing.popo"}) == {"X": "1"}
    derived = application_env({"CREATE_TABLE": "n"}, {"DATABASE_URL": "sqlite:///data/bank.sqlite3"})
    assert derived == {
        "PERSISTENCE_MODULE": "bankaccounts.sqlite_store",
        "SQLITE_DBNAME": str(tmp_path / "data" / "bank.sqlite3"),
        "CREATE_TABLE": "n",
    }
    with pytest.raises(ConfigurationError, match="mysql"):
        application_env({}, {"DATABASE_URL": "mysql://db/bank"})
    assert list(tmp_path.iterdir()) == []


def test_sqlite_relative_and_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert DatabaseConfig.from_url("sqlite:///data/x.db").sqlite_path == tmp_path / "data" / "x.db"
    assert DatabaseConfig.from_url("sqlite:////srv/x.db").sqlite_path == Path("/srv/x.db")
    assert DatabaseConfig.from_url("sqlite:////srv/x.db").sqlalchemy_url() == "sqlite:////srv/x.db"


def test_only_make_sqlite_folder_creates_the_folder(tmp_path: Path) -> None:
    config = DatabaseConfig.from_url(f"sqlite:///{tmp_path / 'data' / 'bank.sqlite3'}")
    assert config.sqlalchemy_url() and config.connect_args() == {} and config.eventsourcing_env()
    assert not (tmp_path / "data").exists()  # reading the setting creates nothing
    config.make_sqlite_folder()
    assert (tmp_path / "data").is_dir()


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&cache=shared", "sqlite:relative.db"],
)
def test_in_memory_or_malformed_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"(?i)sqlite"):
        DatabaseConfig.from_url(url)


def test_postgresql_url() -> None:
    config = DatabaseConfig.from_url("postgresql://bank:s%40cret@127.0.0.1:5433/accounts")
    assert config.store == "postgresql"
    assert config.eventsourcing_env({"REQUEST_TIMEOUT": "7"}) == {
        "PERSISTENCE_MODULE": "bankaccounts.postgres_store",
        "POSTGRES_DBNAME": "accounts",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5433",
        "POSTGRES_USER": "bank",
        "POSTGRES_PASSWORD": "s@cret",
        "POSTGRES_CONNECT_TIMEOUT": "2",  # not eventsourcing's 30 s: a down database is a prompt 503
        "POSTGRES_LOCK_TIMEOUT": "7",  # seconds, not eventsourcing's none
        "POSTGRES_STATEMENT_TIMEOUT": "7000",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "12",  # the servers' limit
    }
    assert config.sqlalchemy_url() == "postgresql+psycopg://bank:s%40cret@127.0.0.1:5433/accounts"


def test_postgresql_unix_socket_url() -> None:
    config = DatabaseConfig.from_url("postgres://postgres:@/postgres?host=/tmp/pg")
    env = config.eventsourcing_env()
    assert env["POSTGRES_HOST"] == "/tmp/pg"
    assert env["POSTGRES_DBNAME"] == "postgres"
    assert "POSTGRES_PORT" not in env


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/db", "postgresql://localhost", "postgresql:///db", "postgresql://h:notaport/db"],
)
def test_unusable_urls_get_a_clear_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        DatabaseConfig.from_url(url)


def test_pgbouncer_pool_mode_reaches_the_postgresql_store_and_nothing_else() -> None:
    url = "postgresql://app:secret@127.0.0.1:6432/bank"
    assert "POSTGRES_PGBOUNCER_POOL_MODE" not in DatabaseConfig.from_url(url).eventsourcing_env({})
    for mode in ("session", "transaction", " Transaction "):
        env = DatabaseConfig.from_url(url).eventsourcing_env({"PGBOUNCER_POOL_MODE": mode})
        assert env["POSTGRES_PGBOUNCER_POOL_MODE"] == mode.strip().lower()
    sqlite = DatabaseConfig.from_url("sqlite:///var/x.sqlite3").eventsourcing_env({"PGBOUNCER_POOL_MODE": "session"})
    assert "POSTGRES_PGBOUNCER_POOL_MODE" not in sqlite


def test_an_unknown_pgbouncer_pool_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="PGBOUNCER_POOL_MODE='statement': use session or transaction"):
        DatabaseConfig.from_url("postgresql://app@127.0.0.1/bank").eventsourcing_env(
            {"PGBOUNCER_POOL_MODE": "statement"}
        )


def test_behind_pgbouncer_connect_args_carry_no_options_and_new_connections_get_the_limits() -> None:
    """SQLAlchemy's and Django's connections: PgBouncer refuses libpq's ``options``, so
    behind it the limits come from ``new_connection_setup``; in transaction pooling no
    statement is prepared."""
    config = DatabaseConfig.from_url("postgresql://app@127.0.0.1:6432/bank")
    assert "options" in config.connect_args({})
    assert config.new_connection_setup({}) is None
    session = config.connect_args({"PGBOUNCER_POOL_MODE": "session"})
    assert "options" not in session and "prepare_threshold" not in session
    transaction = config.connect_args({"PGBOUNCER_POOL_MODE": "transaction"})
    assert "options" not in transaction and transaction["prepare_threshold"] is None
    for mode in ("session", "transaction"):
        assert config.new_connection_setup({"PGBOUNCER_POOL_MODE": mode}) is not None
    sqlite = DatabaseConfig.from_url("sqlite:///var/x.sqlite3")
    assert sqlite.connect_args({"PGBOUNCER_POOL_MODE": "session"}) == {}
    assert sqlite.new_connection_setup({"PGBOUNCER_POOL_MODE": "session"}) is None


def test_the_postgresql_store_refuses_an_unknown_pgbouncer_pool_mode() -> None:
    """Given to eventsourcing's store directly (its own variable), as bankaccounts.config would not."""
    from bankaccounts.postgres_store import PostgresFactory

    env = {"POSTGRES_DBNAME": "x", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"}
    with pytest.raises(ConfigurationError, match="PgBouncer's pool mode 'statement': session or transaction"):
        PostgresFactory({**env, "POSTGRES_PGBOUNCER_POOL_MODE": "statement"})


#: The modules a project keeps as they are, whatever its domain (the Flask and Pyramid
#: READMEs say so): none of them may load the bank-accounts example.
KEPT_AS_THEY_ARE = ("config", "timeouts", "retry", "slot", "unavailable", "insert_once")


@pytest.mark.parametrize("module", KEPT_AS_THEY_ARE)
def test_the_modules_a_project_keeps_import_nothing_from_the_example(module: str) -> None:
    code = f"import sys, bankaccounts.{module}; print(*sorted(m for m in sys.modules if m.startswith('bankaccounts.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert f"bankaccounts.{module}" in loaded.stdout.split(), loaded.stdout
    assert set(loaded.stdout.split()) <= {f"bankaccounts.{kept}" for kept in KEPT_AS_THEY_ARE}, loaded.stdout
