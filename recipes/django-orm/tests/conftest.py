"""Django set up once for the test session; every test gets a fresh, migrated database.

The settings are the production ones (``config/settings.py``), with a secret
key generated for this run: none is kept in the repository.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cookbook_testing.django_checks import HTTPS, django_server_env, open_account, start_django, use_production_settings

use_production_settings()
# Settings are read once, now; each test then points Django at its own
# database. This placeholder is never opened: it only keeps the settings from
# creating ./var for the default SQLite file.
os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(tempfile.gettempdir()) / 'django-orm-placeholder.sqlite3'}")
start_django()

from django.core.management import call_command  # noqa: E402 - needs Django set up
from django.db import DEFAULT_DB_ALIAS, connections  # noqa: E402
from django.test import Client as DjangoClient  # noqa: E402

from bank.accounts import DjangoBankAccounts, close_bank_accounts, init_bank_accounts  # noqa: E402
from config.database import database_settings  # noqa: E402
from cookbook_testing.databases import copy_database  # noqa: E402
from cookbook_testing.http import Client, DjangoTestClient  # noqa: E402

pytest_plugins = ["cookbook_testing.plugin"]


def use_database(database_url: str) -> None:
    """Point Django's default database at ``database_url`` (as Django's own test runner does)."""
    connections.close_all()
    connections.settings[DEFAULT_DB_ALIAS].update(database_settings(database_url))
    # The next use builds a new connection wrapper from the new settings.
    with contextlib.suppress(AttributeError):
        del connections[DEFAULT_DB_ALIAS]


def migrate(database_url: str) -> None:
    use_database(database_url)
    call_command("migrate", verbosity=0)


@pytest.fixture(scope="session")
def migrated() -> Callable[[str], None]:
    """Makes a database Django's default one, and creates the tables: for fixtures of wider scope."""
    return migrate


@pytest.fixture
def django_database(database_url: str) -> Iterator[str]:
    """This test's fresh database, migrated, as Django's default database."""
    migrate(database_url)
    yield database_url
    connections.close_all()


@pytest.fixture(autouse=True)
def _no_application_left_behind() -> Iterator[None]:
    """Each test that constructs the process's application (e.g. through a view) gets its own."""
    yield
    close_bank_accounts()


@pytest.fixture
def bank(django_database: str) -> Iterator[DjangoBankAccounts]:
    """The process's application for one test, used as a context manager: closed when the test ends."""
    with init_bank_accounts() as application:
        yield application
    close_bank_accounts()  # empty the slot, so the next test constructs its own


@pytest.fixture
def api(django_database: str) -> Client:
    return DjangoTestClient(DjangoClient())


# --- servers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_env() -> dict[str, str]:
    return django_server_env()


@pytest.fixture(scope="session")
def migrated_database(recipe_dir: Path, server_env: dict[str, str], make_database_url: Callable[[], str]) -> str:
    """A database whose tables are created as a user creates them before starting a
    server (python manage.py migrate), then left alone: servers get copies of it."""
    database_url = make_database_url()
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=recipe_dir,
        env={**os.environ, **server_env, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return database_url


@pytest.fixture(scope="session")
def prepare_store(migrated_database: str) -> Callable[[dict[str, str]], None]:
    """Each server's new database becomes a copy of the migrated one: what migrate makes
    of an empty database, without a Django start-up per server (the copy of a file on
    SQLite, of a template on PostgreSQL)."""
    return lambda store_env: copy_database(migrated_database, store_env["DATABASE_URL"])


# --- task workers (Celery's and RQ's) -------------------------------------------


def request_transfer(client: DjangoClient, source: str, destination: str, amount: int, key: str) -> str:
    """Ask the project's view for a transfer (202); the id of the task or job it sent."""
    response = client.post(
        f"/accounts/{source}/transfers",
        {"to_account_id": destination, "amount": amount},
        "application/json",
        headers={**HTTPS, "Idempotency-Key": key},
    )
    assert response.status_code == 202, response.content
    return str(response.json()["task_id"])


def funded_accounts(client: DjangoClient, amount: int = 100) -> tuple[str, str]:
    """Two new accounts, the first holding ``amount``."""
    source, destination = open_account(client)["id"], open_account(client)["id"]
    response = client.post(f"/accounts/{source}/deposit", {"amount": amount}, "application/json", headers=HTTPS)
    assert response.status_code == 200
    return source, destination


def balances(client: DjangoClient, *accounts: str) -> dict[str, int]:
    return {account: client.get(f"/accounts/{account}", headers=HTTPS).json()["balance"] for account in accounts}
