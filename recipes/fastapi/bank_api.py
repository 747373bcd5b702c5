"""The HTTP contract as a FastAPI app: routes, request models, and the answers to errors.

``create_app(lifespan)`` builds the app; ``asgi.py`` gives it the lifespan that
constructs each worker process's ``BankAccounts`` (``worker.py``). The
application is synchronous, so no endpoint calls it on the event loop: each
one awaits ``call_application``, which runs the call in a worker thread, at
most ``app.state.threads`` at once, for at most the request's time budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypeVar
from uuid import UUID

import anyio
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, StrictInt, StrictStr, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bankaccounts.application import BankAccounts
from bankaccounts.domain import Account, InvalidRequestError
from bankaccounts.hosts import UNKNOWN_HOST_MESSAGE, allowed_hosts, host_is_allowed
from bankaccounts.readiness import database_ready
from bankaccounts.timeouts import RequestTimeoutError, server_timeout
from bankaccounts.web import (
    ANSWERED_ERRORS,
    IDEMPOTENCY_KEY_HEADER,
    MAX_BODY_BYTES,
    RETRY_AFTER_SECONDS,
    BodyTooLargeError,
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
from worker import worker_application

logger = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


# --- request bodies: Pydantic models, read under the contract's rules ----------


class OpenAccount(BaseModel):
    full_name: StrictStr
    email_address: StrictStr


class Amount(BaseModel):
    amount: StrictInt  # strict: 10.0, "10" and true are not a number of cents


class Transfer(BaseModel):
    to_account_id: UUID
    amount: StrictInt


class OverdraftLimit(BaseModel):
    limit: StrictInt


async def read_body(request: Request) -> bytes:
    """The whole body, refused (413) as soon as it is larger than the contract allows."""
    if "transfer-encoding" in request.headers and "content-length" in request.headers:
        # RFC 9112 6.3: a sign of request smuggling; some servers would read it as chunked.
        msg = "a request must not declare both Transfer-Encoding and Content-Length"
        raise InvalidRequestError(msg)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                msg = f"request body is larger than {MAX_BODY_BYTES} bytes"
                raise BodyTooLargeError(msg)
    except BodyTooLargeError:
        raise
    except Exception:  # the server's: a malformed chunk, a body cut short, a client gone
        msg = "request body could not be read whole: it was cut short, or its chunks are malformed"
        raise InvalidRequestError(msg) from None
    return bytes(body)


def json_body(model: type[M]) -> Callable[[Request], Coroutine[Any, Any, M]]:
    """A dependency that reads the body as ``model``: 415, 413 and 400 as every recipe answers.

    Not FastAPI's own body parameter: that reads any media type, NaN, and a
    field named twice, and answers 422. The model's schema still reaches the
    OpenAPI page, through ``openapi_extra`` (``body_schema``).
    """

    async def read(request: Request) -> M:
        fields = parse_json_object(await read_body(request), request.headers.get("content-type")).fields
        try:
            return model.model_validate(fields)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise InvalidRequestError(f"{where}: {first['msg']}") from None

    return read


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def command_id(idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_KEY_HEADER)] = None) -> str:
    """A write's command id: from the client's ``Idempotency-Key``, or a new one."""
    return command_id_for(idempotency_key)


CommandId = Annotated[str, Depends(command_id)]


# --- the application, called off the event loop ---------------------------------


async def call_application(request: Request, work: Callable[[BankAccounts], T]) -> T:
    """Run ``work`` with this worker's application in a thread, and wait no longer than the server's limit.

    ``app.state.threads`` (a capacity limiter, ``THREADS`` wide) bounds how
    many calls run at once: no more than the store's pool has connections.
    A call still running at ``REQUEST_TIMEOUT`` + 5 s (a database that hangs)
    is answered 503 and left to finish in its thread (no longer counted against
    ``THREADS``), where the database's own limits end it; a client that sends
    the write again with its key gets it applied once.
    """
    try:
        with anyio.fail_after(request.app.state.request_seconds):
            return await anyio.to_thread.run_sync(
                lambda: work(worker_application()), abandon_on_cancel=True, limiter=request.app.state.threads
            )
    except TimeoutError:
        msg = f"no answer from the application within {request.app.state.request_seconds}s"
        raise RequestTimeoutError(msg) from None


def answer(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers=headers)


class ContractRoute(APIRoute):
    """Every route's errors answered as the contract says, in one place."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_or_answer(request: Request) -> Response:
            try:
                return await handle(request)
            except ANSWERED_ERRORS as error:
                return answer(status_for(error), error_json(str(error)))
            except RequestValidationError as error:  # a header or path part of the wrong shape
                return answer(400, error_json(str(error.errors()[0]["msg"])))
            except Exception as error:
                if not store_unavailable(error):
                    raise  # a 500 (internal_error), logged with its traceback
                logger.warning("%s %s: the store is unavailable: %s", request.method, request.url.path, error)
                return answer(503, unavailable_json(), {"Retry-After": str(RETRY_AFTER_SECONDS)})

        return handle_or_answer


# --- the routes -----------------------------------------------------------------


def account_id(account_id: str) -> UUID:
    """The account the path names; a malformed id names none (404), before the body is read."""
    return parse_account_id(account_id)


AccountId = Annotated[UUID, Depends(account_id)]


def add_routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        return answer(200, await call_application(request, health_json))

    @app.get("/ready")
    async def ready() -> JSONResponse:
        status, payload = await anyio.to_thread.run_sync(database_ready)  # bounded: 1 s
        return answer(status, payload)

    @app.post("/accounts", status_code=201, openapi_extra=body_schema(OpenAccount))
    async def open_account(
        request: Request, body: Annotated[OpenAccount, Depends(json_body(OpenAccount))], command: CommandId
    ) -> JSONResponse:
        def work(app: BankAccounts) -> Account:
            return app.open_account(body.full_name, body.email_address, command_id=command)

        return answer(201, account_json(await call_application(request, work)))

    @app.get("/accounts/{account_id}")
    async def get_account(request: Request, account: AccountId) -> JSONResponse:
        return answer(200, account_json(await call_application(request, lambda app: app.get_account(account))))

    @app.post("/accounts/{account_id}/deposit", openapi_extra=body_schema(Amount))
    async def deposit(
        request: Request, account: AccountId, body: Annotated[Amount, Depends(json_body(Amount))], command: CommandId
    ) -> JSONResponse:
        def work(app: BankAccounts) -> Account:
            return app.deposit(account, body.amount, command_id=command)

        return answer(200, account_json(await call_application(request, work)))

    @app.post("/accounts/{account_id}/withdraw", openapi_extra=body_schema(Amount))
    async def withdraw(
        request: Request, account: AccountId, body: Annotated[Amount, Depends(json_body(Amount))], command: CommandId
    ) -> JSONResponse:
        def work(app: BankAccounts) -> Account:
            return app.withdraw(account, body.amount, command_id=command)

        return answer(200, account_json(await call_application(request, work)))

    @app.post("/accounts/{account_id}/transfer", openapi_extra=body_schema(Transfer))
    async def transfer(
        request: Request,
        account: AccountId,
        body: Annotated[Transfer, Depends(json_body(Transfer))],
        command: CommandId,
    ) -> JSONResponse:
        def work(app: BankAccounts) -> Account:
            return app.transfer(account, body.to_account_id, body.amount, command_id=command)

        return answer(200, account_json(await call_application(request, work)))

    @app.post("/accounts/{account_id}/overdraft-limit", openapi_extra=body_schema(OverdraftLimit))
    async def set_overdraft_limit(
        request: Request,
        account: AccountId,
        body: Annotated[OverdraftLimit, Depends(json_body(OverdraftLimit))],
        command: CommandId,
    ) -> JSONResponse:
        def work(app: BankAccounts) -> Account:
            return app.set_overdraft_limit(account, body.limit, command_id=command)

        return answer(200, account_json(await call_application(request, work)))

    @app.post("/accounts/{account_id}/close")
    async def close_account(request: Request, account: AccountId, command: CommandId) -> JSONResponse:
        def work(app: BankAccounts) -> Account:
            return app.close_account(account, command_id=command)

        return answer(200, account_json(await call_application(request, work)))


class HeadAsGet:
    """ASGI middleware: HEAD is answered as GET, without the body (Starlette's own routes
    do this; FastAPI's do not, and a route for both would name one operation twice in the
    OpenAPI document)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


#: The most a request's line and headers may take, as gunicorn and uWSGI allow.
MAX_HEAD_BYTES = 8 * 1024


class HeadSizeLimit:
    """ASGI middleware: a request whose URL (414) or whole head (431) is over 8 KiB is
    refused before anything reads it. uvicorn reads a head of any size that arrives at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            url = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            head = url + sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if url > MAX_HEAD_BYTES:
                await answer(414, error_json(f"the URL is longer than {MAX_HEAD_BYTES} bytes"))(scope, receive, send)
                return
            if head > MAX_HEAD_BYTES:
                message = f"the request's headers are larger than {MAX_HEAD_BYTES} bytes"
                await answer(431, error_json(message))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class AllowedHosts:
    """ASGI middleware: a request for a host not in ``ALLOWED_HOSTS`` is 400, as in every recipe."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host")
            if not host_is_allowed(None if host is None else host.decode("latin-1"), self.hosts):
                await answer(400, error_json(UNKNOWN_HOST_MESSAGE))(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def http_error(request: Request, error: Exception) -> Response:
    """404 and 405 from the router, as JSON (405 names the allowed methods)."""
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    if "GET" in headers.get("Allow", "").split(", "):
        headers["Allow"] += ", HEAD"  # HeadAsGet answers it wherever GET is
    return answer(error.status_code, error_json(str(error.detail)), headers)


async def internal_error(request: Request, error: Exception) -> Response:
    return answer(500, error_json("internal server error"))


def create_app(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]]) -> FastAPI:
    """The app; ``lifespan`` gives each worker process its application (``asgi.py``)."""
    app = FastAPI(title="Bank accounts", lifespan=lifespan, redirect_slashes=False)
    app.router.route_class = ContractRoute
    app.state.request_seconds = server_timeout()
    add_routes(app)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
    app.add_middleware(HeadAsGet)
    app.add_middleware(AllowedHosts, hosts=allowed_hosts())
    app.add_middleware(HeadSizeLimit)  # the outermost: first to see a request
    return app
