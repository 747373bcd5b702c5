"""The test kit's databases: a copy of a prepared database is a database of its own; a borrowed
one comes back as empty as a new one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from bankaccounts.application import construct_application
from cookbook_testing.databases import PostgresDatabases, copy_database, count_rows


def test_a_copy_holds_what_the_source_held_and_then_goes_its_own_way(
    make_database_url: Callable[[], str], events_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = make_database_url(), make_database_url()
    monkeypatch.setenv("DATABASE_URL", source)
    with construct_application() as app:
        app.open_account("Ada", "ada@example.com")
    copy_database(source, target)
    monkeypatch.setenv("DATABASE_URL", target)
    with construct_application() as app:
        app.open_account("Grace", "grace@example.com")
    assert count_rows(source, events_table) == 1
    assert count_rows(target, events_table) == 2  # the copy's own, and the new one


@pytest.fixture
def postgresql(postgres_databases: PostgresDatabases | None) -> PostgresDatabases:
    """Borrowed databases are PostgreSQL's (SQLite's are new files)."""
    assert postgres_databases is not None
    return postgres_databases


@pytest.mark.requires_postgresql
def test_a_borrowed_database_comes_back_empty_and_its_sessions_ended(
    postgresql: PostgresDatabases, events_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgresql.borrow()
    monkeypatch.setenv("DATABASE_URL", url)
    left_open = psycopg.connect(url)  # as a test that forgets to close would leave it
    left_open.execute("SELECT pg_advisory_lock(1)")
    with construct_application() as app:
        app.open_account("Ada", "ada@example.com")
    assert count_rows(url, events_table) == 1

    postgresql.give_back(url)

    assert _ended(left_open)
    assert postgresql.borrow() == url  # lent again...
    with psycopg.connect(url) as connection:  # ...empty, its lock released
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        assert connection.execute("SELECT pg_try_advisory_lock(1)").fetchone() == (True,)
    with construct_application() as app:  # and usable as a new one is
        app.open_account("Grace", "grace@example.com")
    assert count_rows(url, events_table) == 1
    postgresql.give_back(url)


@pytest.mark.requires_postgresql
def test_a_database_holding_more_than_the_public_schema_is_not_lent_again(postgresql: PostgresDatabases) -> None:
    url = postgresql.borrow()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA elsewhere")
    postgresql.give_back(url)
    assert postgresql.borrow() != url


def _ended(connection: psycopg.Connection[Any]) -> bool:
    """Whether the server ended this session: its next statement fails."""
    try:
        connection.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False
