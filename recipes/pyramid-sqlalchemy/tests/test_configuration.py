"""production.ini and development.ini: what each one turns on, and that each one runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyramid.exceptions import ConfigurationError as PyramidConfigurationError
from pyramid.interfaces import ITweens
from pyramid.paster import get_app, get_appsettings
from pyramid.router import Router

from bank import main
from bankaccounts.config import ConfigurationError
from bankaccounts.lifecycle import close_application
from bankaccounts.retry import RetryPolicy
from cookbook_testing.http import HTTPClient
from cookbook_testing.servers import free_port, wait_for

RECIPE_DIR = Path(__file__).resolve().parent.parent
TOOLBAR_TWEEN = "pyramid_debugtoolbar.toolbar_tween_factory"


def tweens(app: Router) -> list[str]:
    return [name for name, _ in app.registry.getUtility(ITweens).implicit()]


@pytest.fixture
def loaded_apps(database_url: str) -> Iterator[list[Router]]:
    apps: list[Router] = []
    yield apps
    close_application()
    for app in apps:
        app.registry["dbsession_factory"].kw["bind"].dispose()


def test_production_ini_turns_every_debug_feature_off(loaded_apps: list[Router]) -> None:
    settings = get_appsettings(str(RECIPE_DIR / "production.ini"), name="main")
    assert "pyramid.includes" not in settings
    assert [key for key, value in settings.items() if key.startswith("pyramid.debug") and value != "false"] == []
    app = get_app(str(RECIPE_DIR / "production.ini"), "main")
    loaded_apps.append(app)
    assert TOOLBAR_TWEEN not in tweens(app)
    assert "pyramid_tm.tm_tween_factory" in tweens(app)


def test_development_ini_adds_the_debug_toolbar(loaded_apps: list[Router]) -> None:
    app = get_app(str(RECIPE_DIR / "development.ini"), "main")
    loaded_apps.append(app)
    assert TOOLBAR_TWEEN in tweens(app)
    assert app.registry.settings["debugtoolbar.hosts"] == ["127.0.0.1", "::1"]


@pytest.mark.parametrize("ini", ["production.ini", "development.ini"])
def test_both_ini_files_retry_conflicts_as_the_shared_policy_does(ini: str, loaded_apps: list[Router]) -> None:
    """One home for the number of attempts: the shared RetryPolicy, not a copy in each ini."""
    app = get_app(str(RECIPE_DIR / ini), "main")
    loaded_apps.append(app)
    assert int(app.registry.settings["retry.attempts"]) == RetryPolicy().attempts


def test_a_database_url_in_the_settings_is_refused(database_url: str, app_settings: dict[str, Any]) -> None:
    with pytest.raises(PyramidConfigurationError, match="DATABASE_URL"):
        main({}, **app_settings, **{"sqlalchemy.url": database_url})


def test_an_unusable_database_url_is_refused_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, app_settings: dict[str, Any]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="in-memory SQLite"):
        main({}, **app_settings)


@pytest.fixture
def pserve(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``pserve development.ini``, on a free port instead of 6543 (the only change to the file)."""
    port = free_port()
    ini = (RECIPE_DIR / "development.ini").read_text()
    assert "listen = localhost:6543\n" in ini
    config = tmp_path / "development.ini"
    config.write_text(ini.replace("listen = localhost:6543\n", f"listen = 127.0.0.1:{port}\n"))
    command = [str(Path(sys.executable).parent / "pserve"), str(config)]
    # pserve finds `bank` installed (pip install -e ., in requirements-dev.txt);
    # the tests import it from this folder instead, and so does pserve here.
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(RECIPE_DIR)}
    process = subprocess.Popen(command, cwd=RECIPE_DIR, env=env, start_new_session=True)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


def test_pserve_serves_development_ini_with_the_toolbar(pserve: tuple[subprocess.Popen[bytes], int]) -> None:
    process, port = pserve
    client = HTTPClient("127.0.0.1", port)

    def healthy() -> bool:
        assert process.poll() is None, "pserve exited"
        try:
            return client.get("/health").status == 200
        except OSError:
            return False

    wait_for(healthy, 60, f"pserve development.ini answering on port {port}")
    assert client.get("/health").json["store"] in ("sqlite", "postgresql")
    assert client.get("/_debug_toolbar/").status == 200
