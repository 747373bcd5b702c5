from __future__ import annotations

from collections.abc import Iterator

import pytest

from bank_api import make_app
from bankaccounts.lifecycle import get_application
from cookbook_testing.http import Client, WSGIClient
from process import create_schema, start_worker, stop_worker

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture
def api(database_url: str) -> Iterator[Client]:
    """The WSGI app in this process, with this process's application, as a worker has it."""
    create_schema()
    start_worker()

    try:
        yield WSGIClient(make_app(get_application))
    finally:
        stop_worker()
