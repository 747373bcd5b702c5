"""Framework-neutral pieces of the HTTP contract that every web recipe serves.

Recipes keep their framework's routing and error handling; they call these
functions to read request bodies, to present accounts, and to map errors to
status codes, so that every recipe answers the same request the same way.
See ``docs/http-contract.rst``.
"""

from __future__ import annotations

import json
import os
from typing import Any
from uuid import UUID, uuid4

from bankaccounts.application import BankAccounts
from bankaccounts.domain import (
    Account,
    AccountClosedError,
    AccountNotFoundError,
    BankAccountsError,
    CommandIdReusedError,
    InsufficientFundsError,
    InvalidRequestError,
)
from bankaccounts.retry import ConflictUnresolvedError
from bankaccounts.unavailable import store_unavailable as store_unavailable  # views answer 503 by it

#: Request bodies larger than this are refused before they are parsed.
MAX_BODY_BYTES = 64 * 1024


class JSONBody:
    """A request body that is a JSON object, with typed, checked field access."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def string(self, name: str) -> str:
        value = self._required(name)
        if not isinstance(value, str):
            msg = f"{name} must be a string"
            raise InvalidRequestError(msg)
        return value

    def integer(self, name: str) -> int:
        value = self._required(name)
        # bool is a subclass of int in Python, but true is not a number of cents.
        if type(value) is not int:
            msg = f"{name} must be an integer"
            raise InvalidRequestError(msg)
        return value

    def uuid(self, name: str) -> UUID:
        text = self.string(name)
        try:
            return UUID(text)
        except ValueError:
            msg = f"{name} must be an account id (a UUID)"
            raise InvalidRequestError(msg) from None

    def _required(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            msg = f"{name} is required"
            raise InvalidRequestError(msg) from None


class UnsupportedMediaTypeError(InvalidRequestError):
    """A request body that is not declared ``application/json`` (415)."""


class BodyTooLargeError(InvalidRequestError):
    """A request body larger than ``MAX_BODY_BYTES`` (413)."""


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json``, any case, with no charset or UTF-8's (RFC 8259: JSON is UTF-8)."""
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != "application/json":
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        msg = "request body names a field twice"
        raise ValueError(msg)
    return fields


def _refuse_constant(name: str) -> Any:
    msg = f"{name} is not JSON"  # Python's json module would read NaN, Infinity and -Infinity
    raise ValueError(msg)


def parse_json_object(raw: bytes, content_type: str | None) -> JSONBody:
    """Parse a request body that must be a JSON object, sent as ``application/json``
    (``content_type``: the request's ``Content-Type`` header, or None).

    Raises ``UnsupportedMediaTypeError`` (415), ``BodyTooLargeError`` (413), or
    ``InvalidRequestError`` (400) for a body that is empty, not UTF-8 (no other
    encoding is guessed), not JSON (``NaN`` and ``Infinity`` are not), nested too
    deeply, naming a field twice, or not an object.
    """
    if not is_json_media_type(content_type):
        msg = "request body must be sent as Content-Type: application/json"
        raise UnsupportedMediaTypeError(msg)
    if len(raw) > MAX_BODY_BYTES:
        msg = f"request body is larger than {MAX_BODY_BYTES} bytes"
        raise BodyTooLargeError(msg)
    if not raw.strip():
        msg = "request body must be a JSON object, and it is empty"
        raise InvalidRequestError(msg)
    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        msg = "request body is not valid JSON in UTF-8, or names a field twice"
        raise InvalidRequestError(msg) from None
    if not isinstance(value, dict):
        msg = "request body must be a JSON object"
        raise InvalidRequestError(msg)
    return JSONBody(value)


#: The request header that makes a write safe to send again (the IETF's
#: draft-ietf-httpapi-idempotency-key-header): every request with the same key
#: is applied once. A client that got no answer (a timeout, a 503, a reset
#: connection) sends the request again with the same key; a random UUID per
#: intended write is the right key.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: WSGI's name for the same header, for recipes that read ``environ``.
IDEMPOTENCY_KEY_ENVIRON = "HTTP_IDEMPOTENCY_KEY"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def command_id_for(idempotency_key: str | None) -> str:
    """The command id of a write request: its ``Idempotency-Key``, or a new one of its own.

    A request without a key gets an id too, so that a retry *inside* the
    request finds its write already applied: eventsourcing's PostgreSQL
    recorder reconnects and inserts again when a COMMIT's answer is lost, and
    the conflict retry that follows then returns the account instead of
    applying the command a second time. Keys and generated ids never meet: they
    have different prefixes.
    """
    if idempotency_key is None:
        return f"request:{uuid4()}"
    key = idempotency_key.strip()
    printable = all("!" <= character <= "~" for character in key)  # visible ASCII, no spaces
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not printable:
        msg = f"{IDEMPOTENCY_KEY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters"
        raise InvalidRequestError(msg)
    return f"idempotency-key:{key}"


def parse_account_id(text: str) -> UUID:
    """An account id from a URL path; a malformed id names no account (404)."""
    try:
        return UUID(text)
    except ValueError:
        msg = f"account {text!r} not found"
        raise AccountNotFoundError(msg) from None


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": str(account.id),
        "full_name": account.full_name,
        "email_address": account.email_address,
        "balance": account.balance,
        "overdraft_limit": account.overdraft_limit,
        "is_closed": account.is_closed,
        "version": account.version,
    }


def health_json(application: BankAccounts) -> dict[str, Any]:
    """``GET /health``: which process answered, with which application instance."""
    return {
        "status": "ok",
        "pid": os.getpid(),
        "application": application.instance_id,
        "store": application.store,
    }


def error_json(message: str) -> dict[str, str]:
    return {"error": message}


#: Seconds a client is asked to wait (``Retry-After``) before it tries again after a 503.
RETRY_AFTER_SECONDS = 1


def unavailable_json() -> dict[str, str]:
    """The body of a 503 (send it with ``Retry-After: RETRY_AFTER_SECONDS``)."""
    return error_json(f"the database is unavailable just now; try again in {RETRY_AFTER_SECONDS}s")


#: The errors a view answers with a 4xx and a JSON error (``status_for``): the
#: example's refusals, and a write that lost every race for its account.
ANSWERED_ERRORS: tuple[type[Exception], ...] = (BankAccountsError, ConflictUnresolvedError)


def status_for(error: Exception) -> int:
    """The HTTP status code for an error the application raised on purpose (``ANSWERED_ERRORS``)."""
    if isinstance(error, CommandIdReusedError):
        return 422  # the same key with another request: the IETF draft's answer
    if isinstance(error, UnsupportedMediaTypeError):
        return 415
    if isinstance(error, BodyTooLargeError):
        return 413
    if isinstance(error, InvalidRequestError):
        return 400
    if isinstance(error, AccountNotFoundError):
        return 404
    if isinstance(error, (AccountClosedError, InsufficientFundsError, ConflictUnresolvedError)):
        return 409
    return 400
