from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bank import create_app
from bank.db import db
from bankaccounts.lifecycle import close_application
from cookbook_testing.http import Client, Response

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture(scope="session")
def recipe_dir() -> Path:
    """The folder holding uwsgi.ini and gunicorn.conf.py, for the stand-alone checks."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def events_table() -> str:
    return "bankaccounts_events"


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """A Flask app on a fresh database; its application is closed after the test."""
    flask_app = create_app({"TESTING": True})
    yield flask_app
    close_application()
    with flask_app.app_context():
        db.engine.dispose()


class FlaskTestClient(Client):
    """Adapts Flask's test client to the contract suite's client interface."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        response = self.client.open(path, method=method, data=body, headers=headers)
        return Response(
            status=response.status_code,
            body=response.get_data(),
            headers={k.lower(): v for k, v in response.headers.items()},
        )


@pytest.fixture
def api(app: Flask) -> Client:
    return FlaskTestClient(app.test_client())
