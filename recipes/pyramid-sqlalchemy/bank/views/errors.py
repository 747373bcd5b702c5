"""Every error as JSON, ``{"error": "..."}``, with the status the contract names.

These are exception views: Pyramid renders them for an exception a view
raised, and ``pyramid_tm`` then aborts the transaction (it checks
``request.exception``), so a request answered with an error stores nothing.
"""

from __future__ import annotations

import logging

from eventsourcing.persistence import IntegrityError
from pyramid.httpexceptions import HTTPError
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config
from pyramid_retry import is_last_attempt

from bankaccounts.domain import BankAccountsError
from bankaccounts.retry import ConflictUnresolvedError
from bankaccounts.web import RETRY_AFTER_SECONDS, error_json, status_for, store_unavailable, unavailable_json

logger = logging.getLogger(__name__)

#: Headers of an HTTP error worth keeping, e.g. the methods a 405 allows.
KEPT_HEADERS = ("Allow", "Retry-After")


def json_error(status: int, message: str) -> Response:
    return Response(status=status, json_body=error_json(message))


@exception_view_config(BankAccountsError)
@exception_view_config(ConflictUnresolvedError)
def domain_error(error: Exception, request: Request) -> Response:
    """Invalid input (400), unknown account (404), refused by the account or a lost race (409)."""
    return json_error(status_for(error), str(error))


@exception_view_config(IntegrityError)
def unresolved_conflict(error: IntegrityError, request: Request) -> Response:
    """A write conflict. ``pyramid_retry`` discards this answer and tries again
    while attempts remain; what the last attempt answers is ``409``."""
    attempts = request.environ.get("retry.attempts", 1)
    message = f"write conflict still unresolved after {attempts} attempts"
    if is_last_attempt(request):
        logger.warning("%s %s: %s", request.method, request.path, message)
    return domain_error(ConflictUnresolvedError(message), request)


@exception_view_config(HTTPError)
def http_error(error: HTTPError, request: Request) -> Response:
    """404, 405, 411, 413 and the rest, in JSON; keeps ``Allow``."""
    message = f"{error.title}: {error.detail}" if error.detail else error.title
    response = json_error(error.code, message)
    for name in KEPT_HEADERS:
        if name in error.headers:
            response.headers[name] = error.headers[name]
    return response


@exception_view_config(Exception)
def unexpected_error(error: Exception, request: Request) -> Response:
    """The store down, cut off or too slow: 503, so the client may retry.
    Anything else: log it with its traceback, tell the client nothing about it."""
    if store_unavailable(error):
        logger.warning("%s %s: the store is unavailable: %s", request.method, request.path_qs, error)
        response = Response(status=503, json_body=unavailable_json())
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    logger.error("%s %s failed", request.method, request.path_qs, exc_info=request.exc_info)
    return json_error(500, "internal server error")
