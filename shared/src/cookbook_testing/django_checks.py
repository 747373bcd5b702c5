"""Checks every Django recipe runs, whichever its store: production settings from
the environment (through ``manage.py``, as a user runs it) and the project in
the test's process (through Django's test client).

A recipe's ``conftest.py`` calls ``use_production_settings()``, sets what its
store needs, then ``start_django()``. Its tests subclass a class here and give
it what only the recipe knows:

- ``DjangoSettingsChecks``: the ``store_settings`` fixture (the store's
  variables ``manage.py check`` needs), ``store_variables`` (the prefixes
  of the store's variables, cleared from the environment like Django's) and
  ``malformed_store_settings``;
- ``DjangoSiteChecks``: the ``django_store`` fixture (this test's store, made
  Django's), ``count_events``, and ``process_application()``.

Django is imported only by this module: the other recipes never load it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import django
import pytest
from django.db import connections
from django.test import Client as DjangoClient
from django.test import override_settings
from django.test.utils import setup_test_environment

from bankaccounts.application import BankAccounts
from bankaccounts.web import MAX_BODY_BYTES

# What the HTTPS proxy in front adds: without it the recipes redirect to HTTPS.
HTTPS = {"X-Forwarded-Proto": "https"}
# Refusals of malformed settings that are the same whichever the store.
MALFORMED_DJANGO_SETTINGS = [
    ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be 1 or 0"),
    ({"DJANGO_SECURE_HSTS_SECONDS": "a year"}, "DJANGO_SECURE_HSTS_SECONDS must be a whole number"),
]


def use_production_settings(settings_module: str = "config.settings") -> None:
    """The recipe's production settings for this test process, whatever the shell has
    set, with a secret key of its own if it has none: none is kept in the repository."""
    for name in [name for name in os.environ if name.startswith("DJANGO_") and name != "DJANGO_SECRET_KEY"]:
        del os.environ[name]
    os.environ.pop("ALLOWED_HOSTS", None)
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module


def start_django() -> None:
    """Read the settings once, as a server's process does, then what Django's own
    test runner does first (among other things, it allows the test client's host
    name, "testserver")."""
    django.setup()
    setup_test_environment()


def django_server_env() -> dict[str, str]:
    """What every server of a Django recipe gets, besides its store (the recipe's ``server_env``)."""
    return {
        "DJANGO_SECRET_KEY": os.environ["DJANGO_SECRET_KEY"],
        # The test kit's HTTP client speaks plain HTTP and cannot add the
        # proxy's X-Forwarded-Proto header, so the servers must not redirect.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
    }


def manage(recipe_dir: Path, *args: str, clear: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py as a user would: this process's environment without Django's
    variables (nor those starting with ``clear``), and exactly the ones given."""
    cleared = ("DJANGO_", *clear)
    environ = {
        name: value for name, value in os.environ.items() if not name.startswith(cleared) and name != "ALLOWED_HOSTS"
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=recipe_dir,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class DjangoSettingsChecks:
    """``manage.py check --deploy`` passes with production settings, and bad settings are refused clearly."""

    #: Prefixes of the store's variables: cleared, so that each check names the ones it gives.
    store_variables: ClassVar[tuple[str, ...]] = ()
    #: The store's settings that must be refused, as (variables, what the refusal says).
    malformed_store_settings: ClassVar[list[tuple[dict[str, str], str]]] = []

    @pytest.fixture
    def store_settings(self) -> dict[str, str]:
        """The store's variables ``manage.py check`` needs; none unless a recipe says so."""
        return {}

    def manage(self, recipe_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return manage(recipe_dir, *args, clear=self.store_variables, **env)

    def test_check_deploy_finds_no_issue_with_production_settings(
        self, recipe_dir: Path, store_settings: dict[str, str]
    ) -> None:
        result = self.manage(
            recipe_dir,
            "check",
            "--deploy",
            "--fail-level",
            "WARNING",
            DJANGO_SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
            ALLOWED_HOSTS="bank.example.com",
            **store_settings,
        )
        assert result.returncode == 0, result.stderr
        assert "System check identified no issues (0 silenced)." in result.stdout

    def test_production_refuses_to_start_without_a_secret_key(
        self, recipe_dir: Path, store_settings: dict[str, str]
    ) -> None:
        result = self.manage(recipe_dir, "check", **store_settings)
        assert result.returncode != 0
        assert "DJANGO_SECRET_KEY is not set" in result.stderr

    def test_check_deploy_flags_debug_mode(self, recipe_dir: Path, store_settings: dict[str, str]) -> None:
        """Development mode needs no secret key, and check --deploy says it is not for production."""
        result = self.manage(recipe_dir, "check", "--deploy", DJANGO_DEBUG="1", **store_settings)
        assert result.returncode == 0, result.stderr
        assert "security.W018" in result.stderr  # DEBUG is on
        assert "security.W009" in result.stderr  # the throw-away key is not a production key

    def test_malformed_settings_are_refused_clearly(
        self, recipe_dir: Path, store_settings: dict[str, str], malformed: tuple[dict[str, str], str]
    ) -> None:
        env, message = malformed
        result = self.manage(
            recipe_dir, "check", DJANGO_SECRET_KEY=os.environ["DJANGO_SECRET_KEY"], **{**store_settings, **env}
        )
        assert result.returncode != 0
        assert message in result.stderr

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Django's refusals and the recipe's store's, one test each."""
        if "malformed" in metafunc.fixturenames:
            cases = [*MALFORMED_DJANGO_SETTINGS, *self.malformed_store_settings]
            ids = [",".join(f"{name}={value}" for name, value in env.items()) for env, _ in cases]
            metafunc.parametrize("malformed", cases, ids=ids)


def open_account(client: DjangoClient) -> dict[str, Any]:
    response = client.post(
        "/accounts", {"full_name": "Ada", "email_address": "ada@example.com"}, "application/json", headers=HTTPS
    )
    assert response.status_code == 201, response.content
    result: dict[str, Any] = response.json()
    return result


class DjangoSiteChecks:
    """The Django project in this process: one application, HTTPS, hosts, body limits, threads."""

    #: Deposits each of six request threads makes on one account.
    deposits_per_thread: ClassVar[int] = 10

    def process_application(self) -> BankAccounts:
        """This process's application, from the recipe's slot."""
        raise NotImplementedError

    def test_concurrent_deposits_from_threads_are_all_recorded(self, django_store: object) -> None:
        """Many request threads on one account: every conflict is retried, no deposit is lost."""
        account = open_account(DjangoClient())
        threads, deposits_per_thread = 6, self.deposits_per_thread
        statuses: list[int] = []

        def deposit_repeatedly() -> None:
            client = DjangoClient()
            try:
                for _ in range(deposits_per_thread):
                    response = client.post(
                        f"/accounts/{account['id']}/deposit", {"amount": 3}, "application/json", headers=HTTPS
                    )
                    statuses.append(response.status_code)
            finally:
                connections.close_all()  # this thread's Django connections, where the store has some

        workers = [threading.Thread(target=deposit_repeatedly) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)

        assert statuses == [200] * threads * deposits_per_thread
        final = DjangoClient().get(f"/accounts/{account['id']}", headers=HTTPS).json()
        assert (final["balance"], final["version"]) == (
            3 * threads * deposits_per_thread,
            1 + threads * deposits_per_thread,
        )

    def test_the_application_is_constructed_once_per_process(self, django_store: object) -> None:
        client = DjangoClient()
        ids = {client.get("/health", headers=HTTPS).json()["application"] for _ in range(5)}
        assert ids == {self.process_application().instance_id}

    def test_plain_http_is_redirected_to_https_except_the_probes(self, django_store: object) -> None:
        client = DjangoClient()
        body = {"full_name": "Ada", "email_address": "a@example.com"}
        response = client.post("/accounts", body, "application/json")
        assert response.status_code == 301
        assert response.headers["Location"] == "https://testserver/accounts"
        assert client.get("/health").status_code == 200  # probes on the machine itself use plain HTTP
        assert client.get("/ready").status_code == 200
        secure = client.get("/health", headers=HTTPS)
        assert secure.headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains; preload"

    def test_a_request_for_another_host_is_refused(self, django_store: object) -> None:
        with override_settings(ALLOWED_HOSTS=["bank.example.com"]):
            response = DjangoClient().get("/health", headers={**HTTPS, "Host": "evil.example.com"})
        assert response.status_code == 400
        assert set(response.json()) == {"error"}

    def test_an_oversized_body_is_413_and_changes_nothing(
        self, django_store: object, count_events: Callable[[], int]
    ) -> None:
        before = count_events()
        body = b'{"full_name": "' + b"N" * MAX_BODY_BYTES + b'", "email_address": "ada@example.com"}'
        response = DjangoClient().generic("POST", "/accounts", body, "application/json", headers=HTTPS)
        assert response.status_code == 413
        assert set(response.json()) == {"error"}
        assert count_events() == before
