"""The Pylons starter project's way to test: every test's writes are rolled back.

One database and one app serve the whole module. Each test gets a
transaction manager that is begun and doomed (it can never commit) and one
``dbsession`` joined to it; WebTest hands both to every request of the test
(``tm.active`` tells ``pyramid_tm`` that the transaction is already managed),
so the requests see each other's writes, and at the end of the test it is all
aborted. The event store takes part: its INSERTs (and, on PostgreSQL, its
``LOCK TABLE``) run in that same transaction. After each test, the database
is checked from outside to be empty again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import transaction
from pyramid.router import Router
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from webtest import TestApp

from bank import main
from bank.models import AuditEntry, get_engine, get_tm_session
from bankaccounts.lifecycle import close_application
from cookbook_testing.contract import open_account
from cookbook_testing.databases import count_rows
from cookbook_testing.http import WebTestClient

TABLES = ("bankaccounts_events", "audit_entries")


@pytest.fixture(scope="module")
def module_database_url(make_database_url: Any) -> Iterator[str]:
    url = make_database_url()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        yield url


@pytest.fixture(scope="module")
def dbengine(module_database_url: str, app_settings: dict[str, Any]) -> Iterator[Engine]:
    engine = get_engine(app_settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def app(app_settings: dict[str, Any], dbengine: Engine) -> Iterator[Router]:
    """One app for the module, on the module's engine (made, and the tables created, once)."""
    yield main({}, dbengine=dbengine, **app_settings)
    close_application()


@pytest.fixture
def tm(module_database_url: str) -> Iterator[transaction.TransactionManager]:
    manager = transaction.TransactionManager(explicit=True)
    manager.begin()
    manager.doom()
    yield manager
    manager.abort()
    left_behind = {table: count_rows(module_database_url, table) for table in TABLES}
    assert left_behind == dict.fromkeys(TABLES, 0), "the test's transaction was not rolled back"


@pytest.fixture
def dbsession(app: Router, tm: transaction.TransactionManager) -> Session:
    return get_tm_session(app.registry["dbsession_factory"], tm)


@pytest.fixture
def testapp(app: Router, tm: transaction.TransactionManager, dbsession: Session) -> TestApp:
    # request.tm and request.dbsession of every request are the test's own,
    # shared by its requests and aborted at its end.
    return TestApp(app, extra_environ={"tm.active": True, "tm.manager": tm, "app.dbsession": dbsession})


def test_requests_in_a_test_share_its_transaction(
    testapp: TestApp, dbsession: Session, module_database_url: str
) -> None:
    account = open_account(WebTestClient(testapp))
    testapp.post_json(f"/accounts/{account['id']}/deposit", {"amount": 250})
    testapp.post_json(f"/accounts/{account['id']}/withdraw", {"amount": 50})

    assert testapp.get(f"/accounts/{account['id']}").json["balance"] == 200
    assert dbsession.scalar(select(func.count()).select_from(AuditEntry)) == 3
    assert dbsession.scalar(text("SELECT count(*) FROM bankaccounts_events")) == 2 * 3  # events, commands' records
    # Nothing is committed: from outside, the tables are still empty.
    assert count_rows(module_database_url, "bankaccounts_events") == 0


@pytest.mark.parametrize("run", [1, 2])
def test_every_test_starts_from_an_empty_database(testapp: TestApp, dbsession: Session, run: int) -> None:
    open_account(WebTestClient(testapp), full_name=f"Run {run}")
    assert dbsession.scalar(text("SELECT count(*) FROM bankaccounts_events")) == 2  # the event, the command's record


def test_refused_requests_leave_the_shared_transaction_usable(testapp: TestApp) -> None:
    account = open_account(WebTestClient(testapp))
    response = testapp.post_json(f"/accounts/{account['id']}/withdraw", {"amount": 1}, expect_errors=True)
    assert response.status_int == 409
    assert testapp.post_json(f"/accounts/{account['id']}/deposit", {"amount": 1}).json["version"] == 2
