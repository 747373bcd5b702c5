"""Django set up once for the test session, on a real Cassandra node; keyspaces of their own.

The settings are the production ones (``config/settings.py``), with a secret
key generated for this run: none is kept in the repository. The node comes
from ``cassandra_testing.plugin`` (or is the cluster ``CASSANDRA_HOSTS``
names). Each test module in-process, and each server, gets a keyspace of its
own, made by the command a user runs (``create_event_store``) and dropped
afterwards. Tests inside one module tell their data apart by the account ids
they create, exactly as the contract's tests against one server do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from cookbook_testing.django_checks import django_server_env, start_django, use_production_settings

use_production_settings()
os.environ.pop("CASSANDRA_KEYSPACE", None)  # every test says which keyspace it uses
# Cassandra's jars (about 95 MB from Maven Central): share the cache of the
# stores/cassandra/ package beside this recipe, which is warm once its tests have run,
# unless CASSANDRA_CACHE_DIR says where (a CI cache).
STORE_PACKAGE = Path(__file__).resolve().parents[3] / "stores" / "cassandra"
os.environ.setdefault("CASSANDRA_CACHE_DIR", str(STORE_PACKAGE / ".cache"))
start_django()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client as DjangoClient  # noqa: E402
from django.test import override_settings  # noqa: E402

from bank.accounts import close_bank_accounts  # noqa: E402
from cookbook_testing.http import Client, DjangoTestClient  # noqa: E402

pytest_plugins = ["cookbook_testing.plugin", "cassandra_testing.plugin"]

# --- keyspaces ------------------------------------------------------------------


def eventstore_env(hosts: str, keyspace: str) -> dict[str, str]:
    return {**settings.EVENTSOURCING_ENV, "CASSANDRA_HOSTS": hosts, "CASSANDRA_KEYSPACE": keyspace}


@pytest.fixture(scope="module")
def module_keyspace(cassandra_hosts_setting: str, new_keyspace: Callable[[], str]) -> Iterator[str]:
    """This module's keyspace, with the event store's tables, as Django's settings name it."""
    keyspace = new_keyspace()
    with override_settings(EVENTSOURCING_ENV=eventstore_env(cassandra_hosts_setting, keyspace)):
        call_command("create_event_store", verbosity=0)
        yield keyspace


@pytest.fixture
def keyspace(module_keyspace: str) -> str:
    return module_keyspace


@pytest.fixture
def count_events(keyspace: str, count_cassandra_events: Callable[[Mapping[str, str]], int]) -> Callable[[], int]:
    return lambda: count_cassandra_events({"CASSANDRA_KEYSPACE": keyspace})


@pytest.fixture(autouse=True)
def _no_application_left_behind() -> Iterator[None]:
    """Each test that constructs the process's application (e.g. through a view) gets its own."""
    yield
    close_bank_accounts()


@pytest.fixture
def api(keyspace: str) -> Client:
    return DjangoTestClient(DjangoClient())


# --- servers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_env() -> dict[str, str]:
    return django_server_env()


@pytest.fixture(scope="session")
def prepare_store() -> Callable[[dict[str, str]], None]:
    """Create a new keyspace's tables before a server starts on it, with the command a
    user runs (``manage.py create_event_store``; test_settings.py runs it that way), here
    in this process: a Django start-up per server saved."""

    def create_event_store(store_env: dict[str, str]) -> None:
        env = eventstore_env(store_env["CASSANDRA_HOSTS"], store_env["CASSANDRA_KEYSPACE"])
        with override_settings(EVENTSOURCING_ENV=env):
            call_command("create_event_store", verbosity=0)

    return create_event_store
