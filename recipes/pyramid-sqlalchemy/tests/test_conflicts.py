"""pyramid_retry: a request that loses a write conflict runs again, whole, and applies once."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.router import Router
from webtest import TestApp

from bank.conflicts import attempts_for
from bank.models import AuditEntry
from bankaccounts.lifecycle import get_application
from bankaccounts.retry import RetryPolicy
from bankaccounts.web import MAX_BODY_BYTES, account_json
from cookbook_testing.contract import open_account
from cookbook_testing.databases import count_rows
from cookbook_testing.http import WebTestClient

#: The attempts (pyramid_retry's ``retry.attempt``, from 0) the test view ran.
attempts: list[int] = []


def deposit_racing_another_request(request: Request) -> dict[str, Any]:
    """Deposit 10, but on the first ``conflicts`` attempts let another request
    deposit 5 and commit between this attempt's read and its write."""
    attempt = request.environ["retry.attempt"]
    attempts.append(attempt)
    account = request.bank.get_account(UUID(request.matchdict["account_id"]))  # reads version n
    if attempt < int(request.matchdict["conflicts"]):
        other = Request.blank(
            f"/accounts/{account.id}/deposit",
            method="POST",
            body=json.dumps({"amount": 5}).encode(),
            content_type="application/json",
        )
        # A subrequest through the tweens: its own pyramid_tm transaction and
        # dbsession (another database connection), committed when it returns.
        assert request.invoke_subrequest(other, use_tweens=True).status_code == 200
    # A row of its own first, then version n + 1 of the account, which conflicts.
    request.dbsession.add(AuditEntry(action="racing-deposit", account_id=str(account.id)))
    account.deposit(10)
    request.bank.save(account)
    return account_json(account)


def add_test_views(config: Configurator) -> None:
    config.add_route("racing_deposit", "/test/accounts/{account_id}/racing-deposit/{conflicts}")
    config.add_view(deposit_racing_another_request, route_name="racing_deposit", renderer="json")


@pytest.fixture
def app(make_app: Callable[..., Router]) -> Router:
    attempts.clear()
    return make_app(add_test_views, **{"retry.attempts": "3"})


@pytest.fixture
def audit_rows(database_url: str) -> Callable[[], int]:
    return lambda: count_rows(database_url, "audit_entries")


def test_no_attempt_follows_one_that_started_after_the_time_budget(
    make_app: Callable[..., Router], monkeypatch: pytest.MonkeyPatch, count_events: Callable[[], int]
) -> None:
    """With attempts to spare but the time spent, the conflict is answered 409, and nothing is written."""
    monkeypatch.setattr("bank.conflicts.PAUSES", RetryPolicy(time_budget=0.001))
    attempts.clear()
    testapp = TestApp(make_app(add_test_views, **{"retry.attempts": "100"}))
    account = open_account(WebTestClient(testapp))
    events = count_events()

    response = testapp.post(f"/test/accounts/{account['id']}/racing-deposit/100", status=409)

    assert attempts == [0, 1]  # the second started after the budget: the last
    assert response.json == {"error": "write conflict still unresolved after 2 attempts"}
    assert testapp.get(f"/accounts/{account['id']}").json["balance"] == 10  # the two racing deposits of 5 only
    assert count_events() == events + 4  # those two deposits and their commands' records


def test_a_conflicting_request_is_retried_whole_and_applies_once(
    testapp: TestApp, count_events: Callable[[], int], audit_rows: Callable[[], int]
) -> None:
    account = open_account(WebTestClient(testapp))

    response = testapp.post(f"/test/accounts/{account['id']}/racing-deposit/1")

    assert attempts == [0, 1]
    assert (response.json["balance"], response.json["version"]) == (15, 3)
    assert testapp.get(f"/accounts/{account['id']}").json == response.json
    # open and the other request's deposit, each with its command's record, and
    # this request's deposit, once (the test view names no command):
    assert count_events() == 2 + 2 + 1
    # open, the other deposit, one racing-deposit: the first attempt's row was aborted.
    assert audit_rows() == 3


def test_a_request_still_conflicting_after_the_last_attempt_gets_409_and_stores_nothing(
    testapp: TestApp, count_events: Callable[[], int], audit_rows: Callable[[], int], caplog: pytest.LogCaptureFixture
) -> None:
    account = open_account(WebTestClient(testapp))

    with caplog.at_level(logging.WARNING, logger="bank"):
        response = testapp.post(f"/test/accounts/{account['id']}/racing-deposit/3", expect_errors=True)

    assert attempts == [0, 1, 2]
    assert response.status_int == 409
    assert response.json == {"error": "write conflict still unresolved after 3 attempts"}
    assert [record.getMessage().endswith("unresolved after 3 attempts") for record in caplog.records] == [True]
    # Only the three other deposits were stored, none of this request's.
    assert testapp.get(f"/accounts/{account['id']}").json["balance"] == 15
    assert count_events() == 2 * (1 + 3)  # each with its command's record
    assert audit_rows() == 1 + 3


def test_the_application_leaves_conflicts_to_pyramid_retry(testapp: TestApp) -> None:
    """With its own retry on, the application would re-run a command inside a spoilt transaction."""
    testapp.get("/health")
    assert get_application().retry is None


@pytest.mark.parametrize(
    ("headers", "attempts_allowed"),
    [
        ({"Content-Length": "2"}, None),
        ({"Content-Length": str(MAX_BODY_BYTES)}, None),
        ({}, None),
        ({"Content-Length": str(MAX_BODY_BYTES + 1)}, 1),
        ({"Transfer-Encoding": "chunked"}, 1),
    ],
)
def test_only_bodies_of_an_acceptable_declared_size_are_copied_for_retries(
    headers: dict[str, str], attempts_allowed: int | None
) -> None:
    request = Request.blank("/accounts", method="POST", headers=headers)
    if "Content-Length" not in headers:
        request.environ.pop("CONTENT_LENGTH", None)
    assert attempts_for(request) == attempts_allowed


@pytest.mark.parametrize(
    ("headers", "status"), [({"Content-Length": str(MAX_BODY_BYTES + 1)}, 413), ({"Transfer-Encoding": "chunked"}, 411)]
)
def test_bodies_too_large_or_of_undeclared_size_are_refused_unread(
    app: Router, count_events: Callable[[], int], headers: dict[str, str], status: int
) -> None:
    environ = Request.blank("/accounts", method="POST", headers=headers).environ
    environ.pop("CONTENT_LENGTH", None)
    if "Content-Length" in headers:
        environ["CONTENT_LENGTH"] = headers["Content-Length"]
    # A body that would be valid, were it read: it is not.
    environ["wsgi.input"] = UnreadableBody()
    response = Request(environ).get_response(app)
    assert response.status_code == status
    assert set(response.json) == {"error"}
    assert count_events() == 0


class UnreadableBody:
    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body was read")

    readline = read
