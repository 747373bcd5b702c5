"""The HTTP contract, in Flask: routes, and errors as JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from bank.accounts import bank, in_transaction
from bankaccounts.hosts import UNKNOWN_HOST_MESSAGE, host_is_allowed, wsgi_host
from bankaccounts.readiness import database_ready
from bankaccounts.web import (
    RETRY_AFTER_SECONDS,
    account_json,
    error_json,
    health_json,
    parse_account_id,
    parse_json_object,
    status_for,
    store_unavailable,
    unavailable_json,
)

logger = logging.getLogger(__name__)

api = Blueprint("api", __name__)


def body() -> Any:
    return parse_json_object(request.get_data(cache=False), request.headers.get("Content-Type"))


@api.get("/health")
def health() -> dict[str, Any]:
    return health_json(bank())


@api.get("/ready")
def ready() -> tuple[dict[str, Any], int]:
    status, payload = database_ready()
    return payload, status


@api.post("/accounts")
def open_account() -> tuple[dict[str, Any], int]:
    fields = body()
    full_name, email_address = fields.string("full_name"), fields.string("email_address")
    account = in_transaction(
        "open", lambda command_id: bank().open_account(full_name, email_address, command_id=command_id)
    )
    return account_json(account), 201


@api.get("/accounts/<account_id>")
def get_account(account_id: str) -> dict[str, Any]:
    return account_json(bank().get_account(parse_account_id(account_id)))


@api.post("/accounts/<account_id>/deposit")
def deposit(account_id: str) -> dict[str, Any]:
    account_uuid, amount = parse_account_id(account_id), body().integer("amount")
    return account_json(
        in_transaction(
            "deposit",
            lambda command_id: bank().deposit(account_uuid, amount, command_id=command_id),
            account_id=account_uuid,
        )
    )


@api.post("/accounts/<account_id>/withdraw")
def withdraw(account_id: str) -> dict[str, Any]:
    account_uuid, amount = parse_account_id(account_id), body().integer("amount")
    return account_json(
        in_transaction(
            "withdraw",
            lambda command_id: bank().withdraw(account_uuid, amount, command_id=command_id),
            account_id=account_uuid,
        )
    )


@api.post("/accounts/<account_id>/transfer")
def transfer(account_id: str) -> dict[str, Any]:
    account_uuid, fields = parse_account_id(account_id), body()
    to_account_id, amount = fields.uuid("to_account_id"), fields.integer("amount")
    account = in_transaction(
        "transfer",
        lambda command_id: bank().transfer(account_uuid, to_account_id, amount, command_id=command_id),
        account_id=account_uuid,
    )
    return account_json(account)


@api.post("/accounts/<account_id>/overdraft-limit")
def set_overdraft_limit(account_id: str) -> dict[str, Any]:
    account_uuid, limit = parse_account_id(account_id), body().integer("limit")
    account = in_transaction(
        "overdraft-limit",
        lambda command_id: bank().set_overdraft_limit(account_uuid, limit, command_id=command_id),
        account_id=account_uuid,
    )
    return account_json(account)


@api.post("/accounts/<account_id>/close")
def close_account(account_id: str) -> dict[str, Any]:
    account_uuid = parse_account_id(account_id)
    return account_json(
        in_transaction(
            "close",
            lambda command_id: bank().close_account(account_uuid, command_id=command_id),
            account_id=account_uuid,
        )
    )


def domain_error(error: Exception) -> tuple[Response, int]:
    return jsonify(error_json(str(error))), status_for(error)


def http_error(error: HTTPException) -> BaseResponse:
    """404, 405, 413, 500 and friends as JSON; keeps headers such as ``Allow``."""
    response = error.get_response()
    response.set_data(jsonify(error_json(error.description or error.name)).get_data())
    response.content_type = "application/json"
    return response


def unavailable_store(error: Exception) -> tuple[Response, int, dict[str, str]]:
    """503 when the store is down, cut off or too slow, so the client may retry; anything else is a 500."""
    if not store_unavailable(error):
        raise error  # Flask logs it and answers 500 (http_error makes that JSON)
    logger.warning("%s %s: the store is unavailable: %s", request.method, request.path, error)
    return jsonify(unavailable_json()), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def host_check(allowed: list[str]) -> Callable[[], None]:
    """A before-request hook: a request for a host not in ``allowed`` (ALLOWED_HOSTS,
    see bankaccounts/hosts.py) is 400. It runs before routing errors are raised, so an
    unknown path for another host is a 400 too, as in Django."""

    def check_host() -> None:
        if not host_is_allowed(wsgi_host(request.environ), allowed):
            abort(400, UNKNOWN_HOST_MESSAGE)

    return check_host
