"""In-process tests: the WSGI callable, called as a server would call it."""

from __future__ import annotations

import pytest

from bank_api import make_app
from bankaccounts.lifecycle import get_application
from cookbook_testing.contract import HttpContract, assert_error
from cookbook_testing.http import Client, WSGIClient


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the WSGI callable in this process."""


def test_405_names_the_allowed_methods(api: Client) -> None:
    response = api.request("DELETE", "/health")
    assert_error(response, 405)
    assert response.headers["allow"] == "GET, HEAD"


def test_oversized_bodies_are_refused_unread(api: Client) -> None:
    assert_error(api.post("/accounts", data=b" " * (64 * 1024 + 1)), 413)


def test_the_app_never_constructs_an_application_itself(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Without the post-fork hook there is no application: a 500, and a log line that says why."""
    client = WSGIClient(make_app(get_application))
    assert_error(client.get("/health"), 500)
    assert "call init_application() first" in caplog.text
    assert "after fork" in caplog.text
