"""Production settings from the environment: ``manage.py check --deploy``, clear refusals, the schema command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest


def manage(recipe_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py as a user would, with exactly the Django and Cassandra variables given here."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "CASSANDRA_")) and name != "ALLOWED_HOSTS"
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


def test_check_deploy_finds_no_issue_with_production_settings(recipe_dir: Path) -> None:
    result = manage(
        recipe_dir,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
        ALLOWED_HOSTS="bank.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_a_secret_key(recipe_dir: Path) -> None:
    result = manage(recipe_dir, "check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_check_deploy_flags_debug_mode(recipe_dir: Path) -> None:
    """Development mode needs no secret key, and check --deploy says it is not for production."""
    result = manage(recipe_dir, "check", "--deploy", DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert "security.W018" in result.stderr  # DEBUG is on
    assert "security.W009" in result.stderr  # the throw-away key is not a production key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be 1 or 0"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "a year"}, "DJANGO_SECURE_HSTS_SECONDS must be a whole number"),
        ({"CASSANDRA_HOSTS": "a:9042,b:9043"}, "every host must use the same CQL port"),
        ({"CASSANDRA_HOSTS": " , "}, "names no host"),
        ({"CASSANDRA_KEYSPACE": "bank-accounts"}, "CASSANDRA_KEYSPACE must be letters, digits and underscores"),
        ({"CASSANDRA_USERNAME": "bank"}, "CASSANDRA_USERNAME is set but CASSANDRA_PASSWORD is not"),
    ],
)
def test_malformed_settings_are_refused_clearly(recipe_dir: Path, env: dict[str, str], message: str) -> None:
    result = manage(recipe_dir, "check", DJANGO_SECRET_KEY=os.environ["DJANGO_SECRET_KEY"], **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_create_event_store_makes_the_keyspace_and_tables_and_can_run_again(
    recipe_dir: Path,
    cassandra_hosts_setting: str,
    new_keyspace: Callable[[], str],
    count_cassandra_events: Callable[[Mapping[str, str]], int],
) -> None:
    keyspace = new_keyspace()
    env = {
        "DJANGO_SECRET_KEY": os.environ["DJANGO_SECRET_KEY"],
        "CASSANDRA_HOSTS": cassandra_hosts_setting,
        "CASSANDRA_KEYSPACE": keyspace,
    }
    for _ in range(2):  # idempotent: safe on every deploy
        result = manage(recipe_dir, "create_event_store", **env)
        assert result.returncode == 0, result.stderr
        assert f"Event store ready in keyspace {keyspace}" in result.stdout
    assert count_cassandra_events(env) == 0  # the events table exists, empty
