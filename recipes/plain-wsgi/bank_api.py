"""The HTTP contract as a plain WSGI callable: standard library only, no framework.

``make_app(get_application)`` returns the WSGI callable. It asks
``get_application`` for the process's ``BankAccounts`` on every request;
constructing it is the job of a hook that runs in each worker process after
the fork (see ``process.py``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from bankaccounts.application import BankAccounts
from bankaccounts.hosts import UNKNOWN_HOST_MESSAGE, allowed_hosts, host_is_allowed, wsgi_host
from bankaccounts.readiness import database_ready
from bankaccounts.request_body import read_whole_body
from bankaccounts.web import (
    ANSWERED_ERRORS,
    IDEMPOTENCY_KEY_ENVIRON,
    RETRY_AFTER_SECONDS,
    JSONBody,
    account_json,
    command_id_for,
    error_json,
    health_json,
    parse_account_id,
    parse_json_object,
    status_for,
    store_unavailable,
    unavailable_json,
)

logger = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Body:
    """A request's body as read; parsed only by the handlers that take one."""

    raw: bytes
    content_type: str | None

    def json(self) -> JSONBody:
        return parse_json_object(self.raw, self.content_type)


#: A handler's arguments: the application, the parts of the path (and, for a
#: write, its ``command_id``), and the request body.
Handler = Callable[[BankAccounts, dict[str, str], Body], tuple[int, dict[str, Any]]]


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


def health(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    return 200, health_json(app)


def ready(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    return database_ready()


def open_account(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    fields = body.json()
    full_name, email_address = fields.string("full_name"), fields.string("email_address")
    account = app.open_account(full_name, email_address, command_id=params["command_id"])
    return 201, account_json(account)


def get_account(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    return 200, account_json(app.get_account(parse_account_id(params["account_id"])))


def deposit(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    account_id, amount = parse_account_id(params["account_id"]), body.json().integer("amount")
    return 200, account_json(app.deposit(account_id, amount, command_id=params["command_id"]))


def withdraw(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    account_id, amount = parse_account_id(params["account_id"]), body.json().integer("amount")
    return 200, account_json(app.withdraw(account_id, amount, command_id=params["command_id"]))


def transfer(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    account_id, fields = parse_account_id(params["account_id"]), body.json()
    to_account_id, amount = fields.uuid("to_account_id"), fields.integer("amount")
    account = app.transfer(account_id, to_account_id, amount, command_id=params["command_id"])
    return 200, account_json(account)


def set_overdraft_limit(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    account_id, limit = parse_account_id(params["account_id"]), body.json().integer("limit")
    return 200, account_json(app.set_overdraft_limit(account_id, limit, command_id=params["command_id"]))


def close_account(app: BankAccounts, params: dict[str, str], body: Body) -> tuple[int, dict[str, Any]]:
    account_id = parse_account_id(params["account_id"])
    return 200, account_json(app.close_account(account_id, command_id=params["command_id"]))


ACCOUNT = r"/accounts/(?P<account_id>[^/]+)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"/health"), {"GET": health}),
    (re.compile(r"/ready"), {"GET": ready}),
    (re.compile(r"/accounts"), {"POST": open_account}),
    (re.compile(ACCOUNT), {"GET": get_account}),
    (re.compile(ACCOUNT + r"/deposit"), {"POST": deposit}),
    (re.compile(ACCOUNT + r"/withdraw"), {"POST": withdraw}),
    (re.compile(ACCOUNT + r"/transfer"), {"POST": transfer}),
    (re.compile(ACCOUNT + r"/overdraft-limit"), {"POST": set_overdraft_limit}),
    (re.compile(ACCOUNT + r"/close"), {"POST": close_account}),
]


def route(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler for a request; HEAD is answered by the GET handler (its body left out)."""
    for pattern, handlers in ROUTES:
        match = pattern.fullmatch(path)
        if match:
            handler = handlers.get("GET" if method == "HEAD" else method)
            if handler is None:
                allow = ", ".join(sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])}))
                raise HTTPError(405, f"method {method} is not allowed here", [("Allow", allow)])
            return handler, match.groupdict()
    raise HTTPError(404, f"no such path: {path}")


def read_body(environ: dict[str, Any]) -> Body:
    """The body: whole, and of the length declared (``read_whole_body`` saw to that)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return Body(environ["wsgi.input"].read(length) if length else b"", environ.get("CONTENT_TYPE") or None)


def make_app(get_application: Callable[[], BankAccounts]) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    allowed = allowed_hosts()  # ALLOWED_HOSTS, read once

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers: list[tuple[str, str]] = []
        method = str(environ["REQUEST_METHOD"])
        try:
            if not host_is_allowed(wsgi_host(environ), allowed):
                raise HTTPError(400, UNKNOWN_HOST_MESSAGE)
            handler, params = route(method, environ.get("PATH_INFO") or "/")
            if method == "POST":  # a write: its command id, from the client's key or new
                params["command_id"] = command_id_for(environ.get(IDEMPOTENCY_KEY_ENVIRON))
            status, payload = handler(get_application(), params, read_body(environ))
        except HTTPError as error:
            status, payload, headers = error.status, error_json(str(error)), error.headers
        except ANSWERED_ERRORS as error:
            status, payload = status_for(error), error_json(str(error))
        except Exception as error:
            if store_unavailable(error):  # down, cut off, or too slow: the client may retry
                logger.warning(
                    "%s %s: the store is unavailable: %s",
                    method,
                    environ.get("PATH_INFO"),
                    error,
                )
                status, payload = 503, unavailable_json()
                headers = [("Retry-After", str(RETRY_AFTER_SECONDS))]
            else:
                logger.exception("unhandled error in %s %s", method, environ.get("PATH_INFO"))
                status, payload = 500, error_json("internal server error")
        data = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [] if method == "HEAD" else [data]  # HEAD: the GET's headers, no body

    # The body read whole and checked first: a bad length, a short, chunked or
    # malformed body, and a request line that is none are answered there.
    return read_whole_body(application)
