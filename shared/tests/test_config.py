from __future__ import annotations

from pathlib import Path

import pytest

from bankaccounts.config import ConfigurationError, DatabaseConfig


def test_unset_means_an_sqlite_file_under_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = DatabaseConfig.from_env({})
    assert config.store == "sqlite"
    assert config.sqlite_path == tmp_path / "var" / "bankaccounts.sqlite3"
    env = config.eventsourcing_env()
    assert env == {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(config.sqlite_path)}
    assert (tmp_path / "var").is_dir()  # created on demand


def test_sqlite_relative_and_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert DatabaseConfig.from_url("sqlite:///data/x.db").sqlite_path == tmp_path / "data" / "x.db"
    assert DatabaseConfig.from_url("sqlite:////srv/x.db").sqlite_path == Path("/srv/x.db")
    assert DatabaseConfig.from_url("sqlite:////srv/x.db").sqlalchemy_url() == "sqlite:////srv/x.db"


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
