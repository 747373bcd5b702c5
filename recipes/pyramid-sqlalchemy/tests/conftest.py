from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyramid.config import Configurator
from pyramid.paster import get_appsettings
from pyramid.router import Router
from webtest import TestApp

from bankaccounts.lifecycle import close_application
from cookbook_testing.http import Client, WebTestClient

pytest_plugins = ["cookbook_testing.plugin"]

RECIPE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def app_settings() -> dict[str, Any]:
    """The settings production.ini gives the app: the tests run what is deployed."""
    return dict(get_appsettings(str(RECIPE_DIR / "production.ini"), name="main"))


@pytest.fixture
def make_app(database_url: str, app_settings: dict[str, Any]) -> Iterator[Callable[..., Router]]:
    """Makes the production app on this test's fresh database (DATABASE_URL), as
    ``bank.main`` does, with test-only configuration added (extra views,
    settings); its application and connections are closed after the test."""
    made: list[Router] = []

    def make(*includes: Callable[[Configurator], None], **settings: Any) -> Router:
        with Configurator(settings={**app_settings, **settings}) as config:
            config.include("bank")
            for include in includes:
                config.include(include)
        made.append(config.make_wsgi_app())
        return made[-1]

    yield make
    close_application()
    for router in made:
        router.registry["dbsession_factory"].kw["bind"].dispose()


@pytest.fixture
def app(make_app: Callable[..., Router]) -> Router:
    return make_app()


@pytest.fixture
def testapp(app: Router) -> TestApp:
    return TestApp(app)


@pytest.fixture
def api(testapp: TestApp) -> Client:
    return WebTestClient(testapp)
