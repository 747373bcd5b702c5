"""``DATABASE_URL`` as Django's ``DATABASES["default"]``.

The URL is parsed by ``bankaccounts.config`` (the same rules as every other
recipe: an SQLite file by default, in-memory SQLite refused); this module only
adds what Django needs to run it well under several worker processes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.core.exceptions import ImproperlyConfigured

from bankaccounts.config import POSTGRES_CONNECTION_WAIT_SECONDS, DatabaseConfig

#: Seconds a connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT = 20
#: Django's PostgreSQL pool (``pool=True``), per process: at most this many connections.
POOL_MAX_SIZE = 4


def database_settings(url: str, *, conn_max_age: int = 0, pool: bool = False) -> dict[str, Any]:
    """Django settings for the database ``url`` names; with ``pool``, Django's own
    PostgreSQL connection pool (which keeps connections itself: no ``CONN_MAX_AGE``)."""
    config = DatabaseConfig.from_url(url)
    if pool and config.store != "postgresql":
        msg = "DJANGO_DB_POOL=1 needs PostgreSQL: Django pools PostgreSQL connections only"
        raise ImproperlyConfigured(msg)
    if pool:
        conn_max_age = 0
    common = {"CONN_MAX_AGE": conn_max_age, "CONN_HEALTH_CHECKS": conn_max_age > 0}
    if config.store == "sqlite":
        assert config.sqlite_path is not None
        # SQLite creates the file but not its folder.
        config.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return {
            **common,
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(config.sqlite_path),
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "OPTIONS": {
                # Every transaction (each atomic() block) takes the write lock
                # when it begins. Writers then queue for the lock instead of
                # failing with "database is locked" when a transaction that has
                # read tries to start writing while another one writes.
                "transaction_mode": "IMMEDIATE",
                "timeout": SQLITE_BUSY_TIMEOUT,
                # Readers do not block the writer, nor the writer the readers.
                "init_command": "PRAGMA journal_mode=WAL",
            },
        }
    return {
        **common,
        "ENGINE": "django.db.backends.postgresql",
        "NAME": config.dbname,
        "USER": config.user,
        "PASSWORD": config.password,
        "HOST": config.host,
        "PORT": config.port,
        # Bounded waits: for a connection, a statement, a lock (bankaccounts/timeouts.py).
        # Query parameters of the URL (sslmode=require, connect_timeout=5, ...) go to
        # libpq too, and win.
        "OPTIONS": {
            **config.connect_args(),
            **{key: value for key, value in parse_qsl(urlsplit(config.url).query) if key not in ("host", "port")},
            # A bounded wait for a pooled connection, as for a new one.
            **(
                {"pool": {"min_size": 1, "max_size": POOL_MAX_SIZE, "timeout": POSTGRES_CONNECTION_WAIT_SECONDS}}
                if pool
                else {}
            ),
        },
    }
