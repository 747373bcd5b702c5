"""The baseline's views: the recipe's routes and JSON, on an ordinary Cassandra table.

A deposit is a lightweight transaction: read the row, then ``UPDATE ... SET
balance = ?, version = ? IF version = <read>``, again from a fresh read if
another request won the race (409 if it keeps losing): Cassandra's way to
change a row exactly once under concurrent writers. A ``counter`` column
would take one round trip and no Paxos, but it cannot sit beside the
account's other columns, cannot say what the balance became, is not
idempotent (a timed-out increment that is retried may count twice) and
cannot refuse a withdrawal. A read is one ``SELECT``. No audit row: the
recipe writes none.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bankaccounts.domain import AccountNotFoundError, BankAccountsError
from bankaccounts.retry import ConflictUnresolvedError
from bankaccounts.web import error_json, parse_account_id, parse_json_object, status_for
from ledger.accounts import ledger

#: Attempts at a deposit's compare-and-set before answering 409.
ATTEMPTS = 100


def error(exception: BankAccountsError) -> JsonResponse:
    return JsonResponse(error_json(str(exception)), status=status_for(exception))


def as_json(row: Any) -> dict[str, Any]:
    return {**row._asdict(), "id": str(row.id)}


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "pid": os.getpid()})


@csrf_exempt
def open_account(request: HttpRequest) -> JsonResponse:
    try:
        fields = parse_json_object(request.body, request.headers.get("Content-Type"))
        full_name, email = fields.string("full_name"), fields.string("email_address")
    except BankAccountsError as exception:
        return error(exception)
    account_id = uuid.uuid4()
    current = ledger()
    current.session.execute(current.statements["insert"], (account_id, full_name, email))
    account = {"id": str(account_id), "full_name": full_name, "email_address": email}
    return JsonResponse({**account, "balance": 0, "overdraft_limit": 0, "is_closed": False, "version": 1}, status=201)


def get_account(request: HttpRequest, account_id: str) -> JsonResponse:
    try:
        current = ledger()
        row = current.session.execute(current.statements["select"], (parse_account_id(account_id),)).one()
        if row is None:
            raise AccountNotFoundError(account_id)
    except BankAccountsError as exception:
        return error(exception)
    return JsonResponse(as_json(row))


@csrf_exempt
def deposit(request: HttpRequest, account_id: str) -> JsonResponse:
    try:
        account_uuid, amount = (
            parse_account_id(account_id),
            parse_json_object(request.body, request.headers.get("Content-Type")).integer("amount"),
        )
        current = ledger()
        select, update = current.statements["select"], current.statements["deposit"]
        for _ in range(ATTEMPTS):
            row = current.session.execute(select, (account_uuid,)).one()
            if row is None:
                raise AccountNotFoundError(account_id)
            balance, version = row.balance + amount, row.version + 1
            if current.session.execute(update, (balance, version, account_uuid, row.version)).was_applied:
                return JsonResponse({**as_json(row), "balance": balance, "version": version})
        raise ConflictUnresolvedError(f"deposit to {account_id} lost the race {ATTEMPTS} times")
    except BankAccountsError as exception:
        return error(exception)
