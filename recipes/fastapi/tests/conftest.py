from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from asgi import app
from cookbook_testing.http import Client, StarletteTestClient

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture(scope="class", params=["uvicorn", "gunicorn", "granian"])
def server_kind(request: pytest.FixtureRequest) -> str:
    """The ASGI servers this recipe runs under, each from its own configuration file."""
    return str(request.param)


@pytest.fixture
def api(database_url: str) -> Iterator[Client]:
    """The app in this process; entering the TestClient runs the lifespan, as a worker would."""
    with TestClient(app, base_url="http://localhost") as client:
        yield StarletteTestClient(client)
