"""Production settings from the environment: ``manage.py check --deploy``, and clear refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def manage(recipe_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py as a user would, with exactly the Django variables given here."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("DJANGO_")}
    environ.pop("ALLOWED_HOSTS", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=recipe_dir,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_finds_no_issue_with_production_settings(recipe_dir: Path, database_url: str) -> None:
    result = manage(
        recipe_dir,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
        DATABASE_URL=database_url,
        ALLOWED_HOSTS="bank.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_a_secret_key(recipe_dir: Path, database_url: str) -> None:
    result = manage(recipe_dir, "check", DATABASE_URL=database_url)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_check_deploy_flags_debug_mode(recipe_dir: Path, database_url: str) -> None:
    """Development mode needs no secret key, and check --deploy says it is not for production."""
    result = manage(recipe_dir, "check", "--deploy", DJANGO_DEBUG="1", DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert "security.W018" in result.stderr  # DEBUG is on
    assert "security.W009" in result.stderr  # the throw-away key is not a production key


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be 1 or 0"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "a year"}, "DJANGO_SECURE_HSTS_SECONDS must be a whole number"),
        ({"DJANGO_CONN_MAX_AGE": "-1"}, "DJANGO_CONN_MAX_AGE must not be negative"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "in-memory SQLite database"),
        ({"DATABASE_URL": "mysql://bank@localhost/bank"}, "unsupported scheme 'mysql'"),
    ],
)
def test_malformed_settings_are_refused_clearly(recipe_dir: Path, env: dict[str, str], message: str) -> None:
    result = manage(recipe_dir, "check", DJANGO_SECRET_KEY=os.environ["DJANGO_SECRET_KEY"], **env)
    assert result.returncode != 0
    assert message in result.stderr
