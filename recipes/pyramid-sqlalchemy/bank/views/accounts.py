"""The HTTP contract's endpoints.

Views read and validate, call the application, and add an audit row; they
never commit. ``pyramid_tm`` commits when the view returns, or aborts if
anything raised, and then the events and the audit row go, or stay, together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from pyramid.request import Request
from pyramid.view import view_config

from bank.body import json_body
from bank.models import AuditEntry
from bankaccounts.domain import Account
from bankaccounts.insert_once import insert_once
from bankaccounts.readiness import database_ready
from bankaccounts.web import account_json, health_json, parse_account_id


def audited(
    request: Request, action: str, command: Callable[[str], Account], account_id: UUID | None = None
) -> dict[str, Any]:
    """Run ``command`` with the request's command id, and record what was done in
    an ordinary table, in the request's transaction. A request sent again with
    its ``Idempotency-Key`` is answered, and changes and audits nothing.

    Given the ``account_id`` the command acts on, the row goes in first: saving
    the events takes the events table's lock (their notification ids in commit
    order) until the commit, so whatever the request writes after the save,
    every writer of the application waits for. Opening an account learns its id
    from the command. A fault in this row is SQLAlchemy's error, never taken for
    a write conflict on the events (eventsourcing's ``IntegrityError``, retried)."""

    def audit(audited_id: UUID) -> None:
        # One row per command id and action: sent again, the command adds none.
        insert_once(
            request.dbsession, AuditEntry, action=action, command_id=request.command_id, account_id=str(audited_id)
        )

    if account_id is not None:
        audit(account_id)
    account = command(request.command_id)
    if account_id is None:
        audit(account.id)
    return account_json(account)


@view_config(route_name="health", request_method="GET", renderer="json")
def health(request: Request) -> dict[str, Any]:
    return health_json(request.bank)


@view_config(route_name="ready", request_method="GET", renderer="json")
def ready(request: Request) -> dict[str, Any]:
    status, payload = database_ready()
    request.response.status_code = status
    return payload


@view_config(route_name="accounts", request_method="POST", renderer="json")
def open_account(request: Request) -> dict[str, Any]:
    fields = json_body(request)
    full_name, email_address = fields.string("full_name"), fields.string("email_address")
    request.response.status_code = 201
    return audited(
        request, "open", lambda command_id: request.bank.open_account(full_name, email_address, command_id=command_id)
    )


@view_config(route_name="account", request_method="GET", renderer="json")
def get_account(request: Request) -> dict[str, Any]:
    return account_json(request.bank.get_account(parse_account_id(request.matchdict["account_id"])))


@view_config(route_name="deposit", request_method="POST", renderer="json")
def deposit(request: Request) -> dict[str, Any]:
    account_id, amount = parse_account_id(request.matchdict["account_id"]), json_body(request).integer("amount")
    return audited(
        request,
        "deposit",
        lambda command_id: request.bank.deposit(account_id, amount, command_id=command_id),
        account_id,
    )


@view_config(route_name="withdraw", request_method="POST", renderer="json")
def withdraw(request: Request) -> dict[str, Any]:
    account_id, amount = parse_account_id(request.matchdict["account_id"]), json_body(request).integer("amount")
    return audited(
        request,
        "withdraw",
        lambda command_id: request.bank.withdraw(account_id, amount, command_id=command_id),
        account_id,
    )


@view_config(route_name="transfer", request_method="POST", renderer="json")
def transfer(request: Request) -> dict[str, Any]:
    account_id, fields = parse_account_id(request.matchdict["account_id"]), json_body(request)
    to_account_id, amount = fields.uuid("to_account_id"), fields.integer("amount")
    return audited(
        request,
        "transfer",
        lambda command_id: request.bank.transfer(account_id, to_account_id, amount, command_id=command_id),
        account_id,
    )


@view_config(route_name="overdraft_limit", request_method="POST", renderer="json")
def set_overdraft_limit(request: Request) -> dict[str, Any]:
    account_id, limit = parse_account_id(request.matchdict["account_id"]), json_body(request).integer("limit")
    return audited(
        request,
        "overdraft-limit",
        lambda command_id: request.bank.set_overdraft_limit(account_id, limit, command_id=command_id),
        account_id,
    )


@view_config(route_name="close", request_method="POST", renderer="json")
def close_account(request: Request) -> dict[str, Any]:
    account_id = parse_account_id(request.matchdict["account_id"])
    return audited(
        request, "close", lambda command_id: request.bank.close_account(account_id, command_id=command_id), account_id
    )
