"""The HTTP contract as Django views.

Each command is one ``save()`` in the application, which the Cassandra store
records all or nothing (a transfer's two accounts too), and which the
application re-runs from a fresh read if another request won the race. So the
views need no transaction of their own.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from bank.accounts import bank_accounts, readiness
from bank.api import api_view, command_id, json_body
from bankaccounts.readiness import ready_json
from bankaccounts.web import account_json, health_json, parse_account_id


@api_view("GET")
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(health_json(bank_accounts()))


@api_view("GET")
def ready(request: HttpRequest) -> JsonResponse:
    status, payload = ready_json(readiness.problem(), "cassandra")
    return JsonResponse(payload, status=status)


@api_view("POST")
def open_account(request: HttpRequest) -> JsonResponse:
    fields = json_body(request)
    full_name, email_address = fields.string("full_name"), fields.string("email_address")
    account = bank_accounts().open_account(full_name, email_address, command_id=command_id(request))
    return JsonResponse(account_json(account), status=201)


@api_view("GET")
def get_account(request: HttpRequest, account_id: str) -> JsonResponse:
    return JsonResponse(account_json(bank_accounts().get_account(parse_account_id(account_id))))


@api_view("POST")
def deposit(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, amount = parse_account_id(account_id), json_body(request).integer("amount")
    return JsonResponse(account_json(bank_accounts().deposit(account_uuid, amount, command_id=command_id(request))))


@api_view("POST")
def withdraw(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, amount = parse_account_id(account_id), json_body(request).integer("amount")
    return JsonResponse(account_json(bank_accounts().withdraw(account_uuid, amount, command_id=command_id(request))))


@api_view("POST")
def transfer(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, fields = parse_account_id(account_id), json_body(request)
    to_account_id, amount = fields.uuid("to_account_id"), fields.integer("amount")
    account = bank_accounts().transfer(account_uuid, to_account_id, amount, command_id=command_id(request))
    return JsonResponse(account_json(account))


@api_view("POST")
def set_overdraft_limit(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, limit = parse_account_id(account_id), json_body(request).integer("limit")
    account = bank_accounts().set_overdraft_limit(account_uuid, limit, command_id=command_id(request))
    return JsonResponse(account_json(account))


@api_view("POST")
def close_account(request: HttpRequest, account_id: str) -> JsonResponse:
    account = bank_accounts().close_account(parse_account_id(account_id), command_id=command_id(request))
    return JsonResponse(account_json(account))
