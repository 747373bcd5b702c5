"""The HTTP contract as Django views.

Writing views run in ``@atomic_with_retries``: the events the command saves
and the audit row commit together at the end of the view, or not at all.
Reading views need no transaction.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from bank.accounts import bank_accounts
from bank.api import api_view, json_body
from bank.models import AuditEntry
from bank.transactions import atomic_with_retries
from bankaccounts.domain import Account
from bankaccounts.readiness import database_ready
from bankaccounts.web import account_json, health_json, parse_account_id


def audited(action: str, account: Account, status: int = 200) -> JsonResponse:
    """Record an audit row in the view's transaction; answer with the account."""
    AuditEntry.objects.create(action=action, account_id=account.id)
    return JsonResponse(account_json(account), status=status)


@api_view("GET")
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(health_json(bank_accounts()))


@api_view("GET")
def ready(request: HttpRequest) -> JsonResponse:
    status, payload = database_ready()
    return JsonResponse(payload, status=status)


@api_view("POST")
@atomic_with_retries
def open_account(request: HttpRequest) -> JsonResponse:
    fields = json_body(request)
    full_name, email_address = fields.string("full_name"), fields.string("email_address")
    return audited("open", bank_accounts().open_account(full_name, email_address), status=201)


@api_view("GET")
def get_account(request: HttpRequest, account_id: str) -> JsonResponse:
    return JsonResponse(account_json(bank_accounts().get_account(parse_account_id(account_id))))


@api_view("POST")
@atomic_with_retries
def deposit(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, amount = parse_account_id(account_id), json_body(request).integer("amount")
    return audited("deposit", bank_accounts().deposit(account_uuid, amount))


@api_view("POST")
@atomic_with_retries
def withdraw(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, amount = parse_account_id(account_id), json_body(request).integer("amount")
    return audited("withdraw", bank_accounts().withdraw(account_uuid, amount))


@api_view("POST")
@atomic_with_retries
def transfer(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, fields = parse_account_id(account_id), json_body(request)
    to_account_id, amount = fields.uuid("to_account_id"), fields.integer("amount")
    return audited("transfer", bank_accounts().transfer(account_uuid, to_account_id, amount))


@api_view("POST")
@atomic_with_retries
def set_overdraft_limit(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, limit = parse_account_id(account_id), json_body(request).integer("limit")
    return audited("overdraft-limit", bank_accounts().set_overdraft_limit(account_uuid, limit))


@api_view("POST")
@atomic_with_retries
def close_account(request: HttpRequest, account_id: str) -> JsonResponse:
    return audited("close", bank_accounts().close_account(parse_account_id(account_id)))
