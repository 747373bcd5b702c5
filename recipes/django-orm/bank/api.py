"""JSON in and out: allowed methods, request bodies, and every error as ``{"error": ...}``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from eventsourcing.persistence import IntegrityError
from kombu.exceptions import OperationalError as CeleryBrokerUnavailableError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bankaccounts.web import (
    ANSWERED_ERRORS,
    IDEMPOTENCY_KEY_HEADER,
    MAX_BODY_BYTES,
    RETRY_AFTER_SECONDS,
    JSONBody,
    command_id_for,
    error_json,
    parse_json_object,
    status_for,
    store_unavailable,
    unavailable_json,
)

logger = logging.getLogger(__name__)

#: A task or job could not be sent: Celery's broker (kombu), or RQ's Redis.
BrokerUnavailableError = (CeleryBrokerUnavailableError, RedisConnectionError, RedisTimeoutError)


def error_response(message: str, status: int) -> JsonResponse:
    return JsonResponse(error_json(message), status=status)


def json_body(request: HttpRequest) -> JSONBody:
    """The request body as a JSON object; ``InvalidRequestError`` (400) otherwise."""
    return parse_json_object(request.body, request.headers.get("Content-Type"))


def command_id(request: HttpRequest) -> str:
    """A write's command id: its ``Idempotency-Key``, or a new id of its own."""
    return command_id_for(request.headers.get(IDEMPOTENCY_KEY_HEADER))


def unavailable(body: dict[str, str]) -> JsonResponse:
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def api_view(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorate a view of the JSON API, which answers ``methods`` only.

    CSRF protection is for browsers sending cookies; this API uses none, so
    its views are exempt. Give them back the protection (drop ``csrf_exempt``)
    if you add cookie-based authentication.
    """
    # HEAD is a GET whose body is left out: wherever GET is answered, HEAD is too.
    methods = (*methods, "HEAD") if "GET" in methods else methods
    allowed = ", ".join(methods)

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def json_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error_response(f"method {request.method} is not allowed here; use {allowed}", 405)
                response["Allow"] = allowed
                return response
            response = answer(request, *args, **kwargs)
            if request.method == "HEAD":  # the GET's status and headers, Content-Length too; no body
                response["Content-Length"] = str(len(response.content))
                response.content = b""
            return response

        def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except ANSWERED_ERRORS as error:
                return error_response(str(error), status_for(error))
            except RequestDataTooBig:
                return error_response(f"request body is larger than {MAX_BODY_BYTES} bytes", 413)
            except IntegrityError:
                # Only reaches here when a caller owns the transaction (see
                # bank.transactions), which then rolls back: ask for a retry.
                logger.warning("write conflict in %s %s", request.method, request.path)
                return error_response("the account was changed by another request at the same time; try again", 409)
            except BrokerUnavailableError as error:
                # A task could not be sent (bank.views.request_transfer): the client may retry.
                logger.warning("%s %s: the task queue is unavailable: %s", request.method, request.path, error)
                message = f"the task queue is unavailable just now; try again in {RETRY_AFTER_SECONDS}s"
                return unavailable(error_json(message))
            except Exception as error:
                if not store_unavailable(error):
                    raise  # Django logs it and answers 500 (server_error, below)
                # Down, cut off, or too slow: the client may retry.
                logger.warning("%s %s: the store is unavailable: %s", request.method, request.path, error)
                return unavailable(unavailable_json())

        return json_view

    return decorate


# Django's error handlers (named in config/urls.py), used when DEBUG is off.


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    return error_response("bad request", 400)


def permission_denied(request: HttpRequest, exception: Exception) -> JsonResponse:
    return error_response("forbidden", 403)


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return error_response(f"nothing at {request.path}", 404)


def server_error(request: HttpRequest) -> JsonResponse:
    # Django has already logged the exception, with its traceback, to django.request.
    return error_response("internal server error", 500)
