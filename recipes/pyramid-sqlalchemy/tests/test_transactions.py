"""pyramid_tm and zope.sqlalchemy: a request's events and rows commit, or abort, together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.router import Router
from sqlalchemy import func, select, text
from webtest import TestApp

from bank.models import AuditEntry
from bankaccounts.domain import InsufficientFundsError
from bankaccounts.web import account_json
from cookbook_testing.contract import assert_refused_commands_write_no_rows, open_account
from cookbook_testing.databases import count_rows
from cookbook_testing.http import WebTestClient


def fail(request: Request) -> None:
    raise RuntimeError("something failed after the events were saved")


def doom(request: Request) -> None:
    request.tm.doom()  # the view still answers 200, but nothing may commit


def refuse(request: Request) -> None:
    raise InsufficientFundsError("a domain error, raised after the events were saved")


#: How the test view ends, and the status its request gets.
ENDINGS = {"fails": (fail, 500), "is-doomed": (doom, 200), "refuses": (refuse, 409)}


def deposit_then_end(request: Request) -> dict[str, Any]:
    """Save an event and an ORM row, check both reached the database, then end badly."""
    account = request.bank.get_account(UUID(request.matchdict["account_id"]))
    account.deposit(100)
    request.bank.save(account)
    request.dbsession.add(AuditEntry(action="deposit", account_id=str(account.id)))
    request.dbsession.flush()
    # Both INSERTs have run, inside the request's transaction:
    events = request.dbsession.scalar(text("SELECT count(*) FROM bankaccounts_events"))
    request.response.headers["X-Events-In-Transaction"] = str(events)
    ending, _ = ENDINGS[request.matchdict["ending"]]
    ending(request)
    return account_json(account)


def add_test_views(config: Configurator) -> None:
    config.add_route("deposit_then_end", "/test/accounts/{account_id}/deposit-then/{ending}")
    config.add_view(deposit_then_end, route_name="deposit_then_end", renderer="json")


@pytest.fixture
def app(make_app: Callable[..., Router]) -> Router:
    """The production app, plus the test views."""
    return make_app(add_test_views)


@pytest.fixture
def audit_rows(database_url: str) -> Callable[[], int]:
    """Committed audit rows, read straight from the database."""
    return lambda: count_rows(database_url, "audit_entries")


def test_events_and_orm_rows_commit_together(
    testapp: TestApp, count_events: Callable[[], int], audit_rows: Callable[[], int]
) -> None:
    account = open_account(WebTestClient(testapp))
    for _ in range(2):  # sent again with its key: answered, and nothing more is written
        testapp.post_json(f"/accounts/{account['id']}/deposit", {"amount": 100}, headers={"Idempotency-Key": "d-1"})
    assert (count_events(), audit_rows()) == (4, 2)  # each write's event and its command's record; one row each


def test_a_refused_command_leaves_no_audit_row(testapp: TestApp, audit_rows: Callable[[], int]) -> None:
    # The audit row goes in before the command runs (bank.views.accounts.audited).
    assert_refused_commands_write_no_rows(WebTestClient(testapp), audit_rows)


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_request_that_saves_events_then_ends_badly_leaves_nothing_behind(
    testapp: TestApp, count_events: Callable[[], int], audit_rows: Callable[[], int], ending: str
) -> None:
    account = open_account(WebTestClient(testapp))
    before = (count_events(), audit_rows())

    response = testapp.post(f"/test/accounts/{account['id']}/deposit-then/{ending}", expect_errors=True)

    _, status = ENDINGS[ending]
    assert response.status_int == status
    assert response.content_type == "application/json"
    if status == 200:  # doomed: the answer was rendered, then the transaction aborted
        assert response.headers["X-Events-In-Transaction"] == str(before[0] + 1)
    else:
        assert set(response.json) == {"error"}
        if status == 500:
            assert "something failed" not in response.json["error"], "a 500 must not leak details"
    assert (count_events(), audit_rows()) == before
    assert testapp.get(f"/accounts/{account['id']}").json == account


def test_a_session_outside_the_transaction_sees_only_committed_rows(app: Router, testapp: TestApp) -> None:
    account = open_account(WebTestClient(testapp))
    session = app.registry["dbsession_factory"]()
    try:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.account_id == account["id"])).all()
        assert [entry.action for entry in entries] == ["open"]
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1
    finally:
        session.close()
