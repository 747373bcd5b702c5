from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from bank import create_app
from bank.db import db
from bankaccounts.lifecycle import close_application
from cookbook_testing.http import Client, FlaskTestClient

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture(scope="class", params=["uwsgi", "gunicorn", "granian"])
def server_kind(request: pytest.FixtureRequest) -> str:
    """The WSGI servers this recipe runs under, each from its own configuration file."""
    return str(request.param)


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """A Flask app on a fresh database; its application is closed after the test."""
    flask_app = create_app({"TESTING": True})
    yield flask_app
    close_application()
    with flask_app.app_context():
        db.engine.dispose()


@pytest.fixture
def api(app: Flask) -> Client:
    return FlaskTestClient(app.test_client())
