"""The HTTP contract as Django views.

Writing views run in ``@atomic_with_retries``: the events the command saves
and the audit row commit together at the end of the view, or not at all.
Reading views need no transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import django_rq
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse

from bank import tasks
from bank.accounts import bank_accounts
from bank.api import api_view, command_id, json_body
from bank.commands import apply_once, record_once
from bank.transactions import atomic_with_retries
from bankaccounts.domain import Account, TransferToSameAccountError, check_amount
from bankaccounts.readiness import database_ready
from bankaccounts.web import account_json, health_json, parse_account_id


def audited(
    request: HttpRequest,
    action: str,
    command: Callable[[str], Account],
    account_id: uuid.UUID | None = None,
    status: int = 200,
) -> JsonResponse:
    """Run ``command`` with the request's command id, record an audit row in the
    view's transaction (first, given the ``account_id`` it acts on: see
    ``apply_once``), and answer with the account. A request sent again with
    its ``Idempotency-Key`` is answered, and changes and audits nothing."""
    account = apply_once(command_id(request), action, command, account_id)
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
    return audited(
        request,
        "open",
        lambda command_id: bank_accounts().open_account(full_name, email_address, command_id=command_id),
        status=201,
    )


@api_view("GET")
def get_account(request: HttpRequest, account_id: str) -> JsonResponse:
    return JsonResponse(account_json(bank_accounts().get_account(parse_account_id(account_id))))


@api_view("POST")
@atomic_with_retries
def deposit(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, amount = parse_account_id(account_id), json_body(request).integer("amount")
    return audited(
        request,
        "deposit",
        lambda command_id: bank_accounts().deposit(account_uuid, amount, command_id=command_id),
        account_uuid,
    )


@api_view("POST")
@atomic_with_retries
def withdraw(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, amount = parse_account_id(account_id), json_body(request).integer("amount")
    return audited(
        request,
        "withdraw",
        lambda command_id: bank_accounts().withdraw(account_uuid, amount, command_id=command_id),
        account_uuid,
    )


@api_view("POST")
@atomic_with_retries
def transfer(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, fields = parse_account_id(account_id), json_body(request)
    to_account_id, amount = fields.uuid("to_account_id"), fields.integer("amount")
    return audited(
        request,
        "transfer",
        lambda command_id: bank_accounts().transfer(account_uuid, to_account_id, amount, command_id=command_id),
        account_uuid,
    )


@api_view("POST")
@atomic_with_retries
def set_overdraft_limit(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid, limit = parse_account_id(account_id), json_body(request).integer("limit")
    return audited(
        request,
        "overdraft-limit",
        lambda command_id: bank_accounts().set_overdraft_limit(account_uuid, limit, command_id=command_id),
        account_uuid,
    )


@api_view("POST")
@atomic_with_retries
def close_account(request: HttpRequest, account_id: str) -> JsonResponse:
    account_uuid = parse_account_id(account_id)
    return audited(
        request,
        "close",
        lambda command_id: bank_accounts().close_account(account_uuid, command_id=command_id),
        account_uuid,
    )


@api_view("POST")
@atomic_with_retries
def request_transfer(request: HttpRequest, account_id: str) -> JsonResponse:
    """A transfer run by a task worker (``bank.tasks.transfer``, or ``bank.jobs.transfer``
    with ``TASK_QUEUE=rq``): 202 with the task's id.

    What can be checked at once is: a bad body or amount (400), an unknown
    account (404); the funds are the task's to check. The task id is the
    request's command id, so a request sent again with its ``Idempotency-Key``
    sends the same task again, which then changes nothing. The task is sent
    once the view's transaction has committed: a request that rolls back
    sends none. A broker that is down is a 503 (``bank.api``), after the
    transaction committed: sending the request again with its key sends it."""
    account_uuid, fields = parse_account_id(account_id), json_body(request)
    to_account_id, amount = fields.uuid("to_account_id"), check_amount(fields.integer("amount"))
    if account_uuid == to_account_id:
        raise TransferToSameAccountError("cannot transfer from an account to itself")
    bank_accounts().get_account(account_uuid)
    bank_accounts().get_account(to_account_id)
    task_id = command_id(request)
    record_once(task_id, "transfer-requested", account_uuid)
    sent_as = send_transfer_on_commit(task_id, (str(account_uuid), str(to_account_id), amount))
    return JsonResponse({"task_id": sent_as}, status=202)


def send_transfer_on_commit(command: str, arguments: tuple[str, str, int]) -> str:
    """Send a transfer to ``settings.TASK_QUEUE`` once the transaction commits; return its task
    (Celery) or job (RQ) id, which is the same for the same command id."""
    if settings.TASK_QUEUE == "rq":
        job_id = rq_job_id(command)
        queue = django_rq.get_queue(settings.RQ_QUEUE)
        transaction.on_commit(lambda: queue.enqueue("bank.jobs.transfer", *arguments, job_id=job_id))
        return job_id
    transaction.on_commit(lambda: tasks.transfer.apply_async(arguments, task_id=command))
    return command


def rq_job_id(command: str) -> str:
    """An RQ job id for a command id: RQ takes letters, digits, ``-`` and ``_`` only, and
    a command id may hold any visible character (an ``Idempotency-Key``)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, command).hex
