"""Django configured once for the session, with only the event store installed;
every test gets a fresh, migrated database (SQLite, or PostgreSQL with
``--store postgresql``) as Django's default one."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings

from bankaccounts.config import DatabaseConfig

settings.configure(
    INSTALLED_APPS=["eventstore"],
    # Replaced by each test's own database before first use (use_database).
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    SECRET_KEY=secrets.token_urlsafe(50),
    USE_TZ=True,
)
django.setup()

from django.core.management import call_command  # noqa: E402 - needs Django set up
from django.db import DEFAULT_DB_ALIAS, connections  # noqa: E402

pytest_plugins = ["cookbook_testing.plugin"]


def database_settings(url: str) -> dict[str, Any]:
    """Django's settings for the test database ``url`` names, as a project would write them."""
    config = DatabaseConfig.from_url(url)
    common = {"CONN_MAX_AGE": 0}
    if config.store == "sqlite":
        assert config.sqlite_path is not None
        config.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return {
            **common,
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(config.sqlite_path),
            # Writers queue for SQLite's write lock instead of failing when a
            # transaction that has read starts to write (the recipes do the same).
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL"},
        }
    return {
        **common,
        "ENGINE": "django.db.backends.postgresql",
        "NAME": config.dbname,
        "USER": config.user,
        "PASSWORD": config.password,
        "HOST": config.host,
        "PORT": config.port,
        "OPTIONS": config.connect_args(),
    }


@pytest.fixture
def django_database(database_url: str) -> Iterator[str]:
    """This test's fresh database, migrated, as Django's default database."""
    connections.close_all()
    connections.settings[DEFAULT_DB_ALIAS].update(database_settings(database_url))
    # The next use builds a new connection wrapper from the new settings.
    with contextlib.suppress(AttributeError):
        del connections[DEFAULT_DB_ALIAS]
    call_command("migrate", verbosity=0)
    yield database_url
    connections.close_all()
