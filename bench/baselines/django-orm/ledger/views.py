"""The baseline's views: the recipe's routes and JSON, on the ORM's rows.

A deposit is Django's atomic increment (``update(balance=F("balance") + amount)``)
plus the recipe's audit row, in one ``transaction.atomic()``; a read is one
``get()``.
"""

from __future__ import annotations

import os

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bankaccounts.domain import AccountNotFoundError, BankAccountsError
from bankaccounts.web import error_json, parse_account_id, parse_json_object, status_for
from ledger.models import Account, AuditEntry


def error(exception: BankAccountsError) -> JsonResponse:
    return JsonResponse(error_json(str(exception)), status=status_for(exception))


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "pid": os.getpid()})


@csrf_exempt
def open_account(request: HttpRequest) -> JsonResponse:
    try:
        fields = parse_json_object(request.body, request.headers.get("Content-Type"))
        with transaction.atomic():
            account = Account.objects.create(
                full_name=fields.string("full_name"), email_address=fields.string("email_address")
            )
            AuditEntry.objects.create(action="open", account_id=account.id)
    except BankAccountsError as exception:
        return error(exception)
    return JsonResponse(account.as_json(), status=201)


def get_account(request: HttpRequest, account_id: str) -> JsonResponse:
    try:
        return JsonResponse(Account.objects.get(pk=parse_account_id(account_id)).as_json())
    except Account.DoesNotExist:
        return error(AccountNotFoundError(account_id))
    except BankAccountsError as exception:
        return error(exception)


@csrf_exempt
def deposit(request: HttpRequest, account_id: str) -> JsonResponse:
    try:
        account_uuid, amount = (
            parse_account_id(account_id),
            parse_json_object(request.body, request.headers.get("Content-Type")).integer("amount"),
        )
        with transaction.atomic():
            if not Account.objects.filter(pk=account_uuid).update(
                balance=F("balance") + amount, version=F("version") + 1
            ):
                raise AccountNotFoundError(account_id)
            account = Account.objects.get(pk=account_uuid)
            AuditEntry.objects.create(action="deposit", account_id=account_uuid)
    except BankAccountsError as exception:
        return error(exception)
    return JsonResponse(account.as_json())
