"""Which event store an application uses: decided here, and only here.

A recipe that names its own persistence module (``PERSISTENCE_MODULE`` in
the environment it constructs the application with, or in the process's
environment) gets exactly that: Cassandra, SQLAlchemy on a request's session,
Django's ORM. Otherwise one setting, ``DATABASE_URL``, selects the event store
(``application_env``):

- unset or empty: an SQLite file, ``var/bankaccounts.sqlite3`` under the current
  folder, created on demand (the zero-setup default);
- ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3``;
- ``postgresql://user:password@host:port/dbname`` (``postgres://`` too; a Unix
  socket folder may be given as ``?host=/path``).

``PGBOUNCER_POOL_MODE`` (``session`` or ``transaction``) says that a PostgreSQL
``DATABASE_URL`` points at a PgBouncer in that pool mode rather than at the
server itself (``bankaccounts.postgres_store`` says what changes).

In-memory SQLite is refused: every worker process would get its own private,
empty database, which is never what a deployment wants.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_SQLITE_PATH = Path("var") / "bankaccounts.sqlite3"

#: The longest eventsourcing's PostgreSQL store waits for a connection (its
#: pool's wait, which includes connecting). Its recorders try each statement up
#: to ten times when the connection fails, so with the database down a request
#: answers 503 after about ten of these waits. Its default is 30 s: a worker
#: started during an outage then took 30 s to start, and a request 5 minutes.
POSTGRES_CONNECTION_WAIT_SECONDS = 2


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


#: The setting, and the pool modes it may name.
PGBOUNCER_POOL_MODE = "PGBOUNCER_POOL_MODE"
PGBOUNCER_POOL_MODES = ("session", "transaction")


def pgbouncer_pool_mode(environ: Mapping[str, str] | None = None) -> str:
    """``PGBOUNCER_POOL_MODE`` from ``environ`` (default ``os.environ``): a pool mode,
    or ``""`` when ``DATABASE_URL`` points at PostgreSQL itself."""
    environ = os.environ if environ is None else environ
    mode = environ.get(PGBOUNCER_POOL_MODE, "").strip().lower()
    if mode and mode not in PGBOUNCER_POOL_MODES:
        msg = f"{PGBOUNCER_POOL_MODE}={mode!r}: use session or transaction (PgBouncer's pool_mode), or leave it unset"
        raise ConfigurationError(msg)
    return mode


@dataclass(frozen=True)
class DatabaseConfig:
    """Where the events live, parsed from a ``DATABASE_URL``."""

    store: Literal["sqlite", "postgresql"]
    url: str
    sqlite_path: Path | None = None
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = ""
    dbname: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DatabaseConfig:
        environ = os.environ if environ is None else environ
        return cls.from_url(environ.get("DATABASE_URL", ""))

    @classmethod
    def from_url(cls, url: str) -> DatabaseConfig:
        url = url.strip()
        if not url:
            path = DEFAULT_SQLITE_PATH.absolute()
            return cls(store="sqlite", url=f"sqlite:///{path}", sqlite_path=path)
        scheme = url.partition(":")[0].lower()
        if scheme == "sqlite":
            return cls._from_sqlite_url(url)
        if scheme in ("postgresql", "postgres"):
            return cls._from_postgres_url(url)
        msg = (
            f"DATABASE_URL has an unsupported scheme {scheme!r}: "
            "use sqlite:///path/to/file.sqlite3 or postgresql://user:password@host:port/dbname"
        )
        raise ConfigurationError(msg)

    @classmethod
    def _from_sqlite_url(cls, url: str) -> DatabaseConfig:
        if not url.startswith("sqlite:///"):
            msg = "DATABASE_URL for SQLite must look like sqlite:///relative/path or sqlite:////absolute/path"
            raise ConfigurationError(msg)
        raw_path = url[len("sqlite:///") :].split("?", 1)[0]
        if raw_path in ("", ":memory:") or "mode=memory" in url:
            msg = (
                "DATABASE_URL names an in-memory SQLite database, which worker processes "
                "cannot share: give a file path, e.g. sqlite:///var/bankaccounts.sqlite3"
            )
            raise ConfigurationError(msg)
        path = Path(raw_path).absolute()
        return cls(store="sqlite", url=url, sqlite_path=path)

    @classmethod
    def _from_postgres_url(cls, url: str) -> DatabaseConfig:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or ""])[0]
        dbname = unquote(parts.path.lstrip("/"))
        if not host or not dbname:
            msg = "DATABASE_URL for PostgreSQL must name a host and a database: postgresql://user:password@host:port/dbname"
            raise ConfigurationError(msg)
        try:
            port = str(parts.port or query.get("port", [""])[0])
        except ValueError as error:
            msg = f"DATABASE_URL has an invalid port: {error}"
            raise ConfigurationError(msg) from None
        return cls(
            store="postgresql",
            url=url,
            host=host,
            port=port,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            dbname=dbname,
        )

    def eventsourcing_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Settings for ``eventsourcing``'s own SQLite or PostgreSQL persistence module.

        That is ``bankaccounts.sqlite_store`` or ``bankaccounts.postgres_store``
        (eventsourcing's, with a statement timeout), every wait bounded by ``REQUEST_TIMEOUT``
        (read from ``environ``, default ``os.environ``) as in ``connect_args``.
        """
        if self.store == "sqlite":
            assert self.sqlite_path is not None
            # eventsourcing's, creating the file's folder when the application is constructed.
            return {"PERSISTENCE_MODULE": "bankaccounts.sqlite_store", "SQLITE_DBNAME": str(self.sqlite_path)}
        from bankaccounts.timeouts import request_timeout, server_timeout  # it imports this module

        env = {
            "PERSISTENCE_MODULE": "bankaccounts.postgres_store",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_CONNECT_TIMEOUT": str(POSTGRES_CONNECTION_WAIT_SECONDS),
            # Seconds: the wait for the table lock every write takes (eventsourcing's default: none).
            "POSTGRES_LOCK_TIMEOUT": str(request_timeout(environ)),
            # Milliseconds (bankaccounts.postgres_store).
            "POSTGRES_STATEMENT_TIMEOUT": str(request_timeout(environ) * 1000),
            # Seconds: a session that stalls inside a transaction loses it, and its locks.
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(server_timeout(environ)),
        }
        if mode := pgbouncer_pool_mode(environ):
            env["POSTGRES_PGBOUNCER_POOL_MODE"] = mode
        if self.port:
            env["POSTGRES_PORT"] = self.port
        return env

    def make_sqlite_folder(self) -> None:
        """Create the folder of the SQLite file, if missing (SQLite creates the file, not its
        folder); nothing for PostgreSQL. For code that opens the file itself (SQLAlchemy's
        engine): eventsourcing's store does it for itself (``bankaccounts.sqlite_store``)."""
        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)

    def connect_args(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """SQLAlchemy's ``connect_args``, Django's ``OPTIONS``: for PostgreSQL, how long to wait
        for a connection, and the session limits (``bankaccounts.timeouts``) as libpq's
        ``options``; nothing for SQLite. Behind PgBouncer (``PGBOUNCER_POOL_MODE``), which
        refuses ``options``, the limits come from ``new_connection_setup`` instead, and in
        transaction pooling no statement is prepared (psycopg prepares one it has run five
        times, and a prepared statement belongs to a server session)."""
        if self.store != "postgresql":
            return {}
        wait = {"connect_timeout": str(POSTGRES_CONNECTION_WAIT_SECONDS)}
        mode = pgbouncer_pool_mode(environ)
        if mode == "transaction":
            return {**wait, "prepare_threshold": None}
        if mode == "session":
            return wait
        from bankaccounts.timeouts import postgres_session_limits  # it imports this module

        limits = postgres_session_limits(environ)
        return {**wait, "options": " ".join(f"-c {name}={value}" for name, value in limits.items())}

    def new_connection_setup(self, environ: Mapping[str, str] | None = None) -> Callable[[Any], None] | None:
        """What to run on each new psycopg connection that ``connect_args`` opened (SQLAlchemy's
        ``connect`` event, Django's ``connection_created``): behind PgBouncer, the session
        limits set by SQL (session pooling) or checked to be the role's (transaction pooling:
        ``bankaccounts.session_limits``); otherwise nothing (``None``)."""
        mode = pgbouncer_pool_mode(environ)
        if self.store != "postgresql" or not mode:
            return None
        from bankaccounts.session_limits import for_new_connections  # it imports this module
        from bankaccounts.timeouts import postgres_session_limits

        limits = {name: f"{milliseconds}ms" for name, milliseconds in postgres_session_limits(environ).items()}
        return for_new_connections(mode, limits, self.user)

    def set_up_sqlalchemy_connections(self, engine: Any, environ: Mapping[str, str] | None = None) -> None:
        """Run ``new_connection_setup`` on each connection ``engine`` opens (its ``connect``
        event), if there is one. SQLAlchemy's pool closes a connection whose set-up raised."""
        if (setup := self.new_connection_setup(environ)) is not None:
            from sqlalchemy import event  # the SQLAlchemy recipes' dependency, not this package's

            event.listen(engine, "connect", lambda connection, record: setup(connection))

    def sqlalchemy_url(self) -> str:
        """The same database as an SQLAlchemy URL (PostgreSQL through psycopg 3)."""
        if self.store == "sqlite":
            assert self.sqlite_path is not None
            return f"sqlite:///{self.sqlite_path}"
        return "postgresql+psycopg" + self.url[self.url.index(":") :]


def application_env(env: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to construct an application with: ``env`` itself when it
    (or ``environ``, default ``os.environ``) names a ``PERSISTENCE_MODULE``, and
    ``DATABASE_URL`` is then not read at all; otherwise the settings of the store
    ``DATABASE_URL`` selects, with ``env`` laid over them."""
    environ = os.environ if environ is None else environ
    env = dict(env or {})
    if env.get("PERSISTENCE_MODULE") or environ.get("PERSISTENCE_MODULE"):
        return env
    return {**DatabaseConfig.from_env(environ).eventsourcing_env(environ), **env}


def label_postgres_connections(environ: MutableMapping[str, str] | None = None) -> None:
    """Name this process in every PostgreSQL connection it opens from now on.

    libpq reads ``PGAPPNAME`` when it connects, as the connection's
    ``application_name``: ``pg_stat_activity`` then shows which process owns
    which server session. It changes ``environ`` (default ``os.environ``), so
    call it in the process that connects, after any fork.
    """
    environ = os.environ if environ is None else environ
    environ["PGAPPNAME"] = f"bankaccounts-{os.getpid()}"
