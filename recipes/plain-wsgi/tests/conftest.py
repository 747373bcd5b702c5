from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bank_api import make_app
from bankaccounts.lifecycle import get_application
from cookbook_testing.http import Client, WSGIClient
from process import create_schema, start_worker, stop_worker

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture(scope="session")
def recipe_dir() -> Path:
    """The folder holding uwsgi.ini and gunicorn.conf.py, for the stand-alone checks."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def events_table(test_store: str) -> str:
    # eventsourcing's own stores name the table differently.
    return "stored_events" if test_store == "sqlite" else "bankaccounts_events"


@pytest.fixture
def api(database_url: str) -> Iterator[Client]:
    """The WSGI app in this process, with this process's application, as a worker has it."""
    create_schema()
    start_worker()

    try:
        yield WSGIClient(make_app(get_application))
    finally:
        stop_worker()
