"""``DATABASE_URL`` as Django's ``DATABASES["default"]``.

The URL is parsed by ``bankaccounts.config`` (the same rules as every other
recipe: an SQLite file by default, in-memory SQLite refused); this module only
adds what Django needs to run it well under several worker processes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bankaccounts.config import DatabaseConfig

#: Seconds a connection waits for another process's write lock before failing.
SQLITE_BUSY_TIMEOUT = 20


def database_settings(url: str, *, conn_max_age: int = 0) -> dict[str, Any]:
    """Django settings for the database ``url`` names."""
    config = DatabaseConfig.from_url(url)
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
        },
    }
