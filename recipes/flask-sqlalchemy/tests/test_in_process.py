"""In-process tests with Flask's test client: the contract, and the transaction."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from flask import Flask
from sqlalchemy import func, select

from bank.accounts import bank, in_transaction
from bank.db import AuditEntry, db
from bankaccounts.domain import Account
from cookbook_testing.contract import HttpContract, assert_refused_commands_write_no_rows
from cookbook_testing.http import Client


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the Flask app in this process."""


def audit_rows(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_events_and_orm_rows_commit_together(app: Flask, count_events: Callable[[], int]) -> None:
    client = app.test_client()
    account = client.post("/accounts", json={"full_name": "Ada", "email_address": "ada@example.com"}).json
    assert account is not None
    for _ in range(2):  # sent again with its key: answered, and nothing more is written
        response = client.post(
            f"/accounts/{account['id']}/deposit", json={"amount": 100}, headers={"Idempotency-Key": "deposit-1"}
        )
        assert response.status_code == 200
    assert count_events() == 4  # each write's event, and its command's record
    assert audit_rows(app) == 2


def test_a_refused_command_leaves_no_audit_row(app: Flask, api: Client) -> None:
    # The audit row goes in before the command runs (bank.accounts.in_transaction).
    assert_refused_commands_write_no_rows(api, lambda: audit_rows(app))


def test_a_request_that_fails_after_saving_events_stores_nothing(app: Flask, count_events: Callable[[], int]) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500, as in production

    @app.post("/accounts/<account_id>/deposit-then-fail")
    def deposit_then_fail(account_id: str) -> str:
        account = bank().get_account(UUID(account_id))
        account.deposit(100)
        bank().save(account)  # the INSERT has run, inside the request's transaction
        db.session.add(AuditEntry(action="deposit", account_id=account_id))
        db.session.flush()
        raise RuntimeError("something failed after the events were saved")

    client = app.test_client()
    account = client.post("/accounts", json={"full_name": "Ada", "email_address": "ada@example.com"}).json
    assert account is not None
    events, rows = count_events(), audit_rows(app)

    response = client.post(f"/accounts/{account['id']}/deposit-then-fail")

    assert response.status_code == 500
    assert response.is_json
    assert set(response.get_json()) == {"error"}
    assert count_events() == events
    assert audit_rows(app) == rows
    assert client.get(f"/accounts/{account['id']}").get_json() == account


def test_a_conflict_rolls_back_and_reruns_the_whole_unit_of_work(app: Flask) -> None:
    with app.app_context():
        account_id = in_transaction("open", lambda _: bank().open_account("Ada", "ada@example.com")).id
    attempts: list[int] = []

    def deposit_racing_another_request(command_id: str) -> Account:
        attempts.append(len(attempts) + 1)
        account = bank().get_account(account_id)  # reads version 1 on the first attempt
        if len(attempts) == 1:
            # Another request (its own app context, its own session) commits
            # version 2 first, so this attempt's version 2 must conflict.
            with app.app_context():
                in_transaction("deposit", lambda _: bank().deposit(account_id, 5))
        account.deposit(10)
        bank().save(account)
        return account

    with app.app_context():
        result = in_transaction("deposit", deposit_racing_another_request)

    assert attempts == [1, 2]
    assert (result.balance, result.version) == (15, 3)
    assert audit_rows(app) == 3  # the rolled-back attempt left no audit row


def test_the_application_is_constructed_once_per_process(app: Flask) -> None:
    client = app.test_client()
    ids = {client.get("/health").get_json()["application"] for _ in range(5)}
    assert len(ids) == 1
