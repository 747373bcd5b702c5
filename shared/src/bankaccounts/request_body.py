"""Every request's body read whole, and checked, before the framework sees it.

Wrap a recipe's WSGI application with ``read_whole_body``. It reads the body
the request declares into memory (at most ``MAX_BODY_BYTES``) and hands the
application an environ whose ``wsgi.input`` holds exactly that, with its
``CONTENT_LENGTH``. Frameworks then never meet what the servers pass on as
they received it, and answered with a 500 before:

- ``Content-Length: abc`` or ``-5`` (uWSGI passes it on; Django failed on it);
- a body shorter than its ``Content-Length`` (uWSGI raises ``OSError`` once
  its socket timeout, 4 s by default, runs out; gunicorn returns what came);
- a chunked body (``Transfer-Encoding: chunked``): gunicorn dechunks it but
  declares no length, which Django reads as empty; uWSGI's ``http-socket``
  gives it only to ``uwsgi.chunked_read()``, and every framework read it as
  empty; a malformed chunk raised gunicorn's ``ChunkMissingTerminator``;
- a request line that is not one (uWSGI passes on an environ without
  ``REQUEST_METHOD``).

Each of those is answered here, with the contract's JSON error: 400, or 413
for a body over the limit (declared or counted). Reading is bounded: by the
server's socket timeout (uWSGI), and by its worker timeout (gunicorn's
``timeout``, ``REQUEST_TIMEOUT`` + 5 s), as every request is.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from bankaccounts.web import MAX_BODY_BYTES, error_json

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
#: Seconds ``uwsgi.chunked_read()`` waits for each chunk: uWSGI's default socket timeout.
CHUNK_TIMEOUT_SECONDS = 4


class BadRequestBodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_whole_body(application: WSGIApp) -> WSGIApp:
    """``application``, given each request's body whole, or never called for a bad one."""

    def whole_body_application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            body = _read(environ)
        except BadRequestBodyError as error:
            data = json.dumps(error_json(str(error))).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
            # No "Connection: close": PEP 3333 forbids an application hop-by-hop headers (wsgiref
            # refuses them). Both servers close a connection whose request body was not read.
            start_response(f"{error.status} {HTTPStatus(error.status).phrase}", headers)
            return [data]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return application(environ, start_response)

    return whole_body_application


def _read(environ: dict[str, Any]) -> bytes:
    if not environ.get("REQUEST_METHOD"):
        raise BadRequestBodyError(400, "the request line is malformed")
    length = str(environ.get("CONTENT_LENGTH") or "").strip()
    coding = str(environ.get("HTTP_TRANSFER_ENCODING") or "").strip().lower()
    if coding:
        if coding != "chunked" or length:  # both at once is how requests are smuggled past proxies
            raise BadRequestBodyError(400, "Transfer-Encoding must be chunked, and without a Content-Length")
        body = _read_chunked(environ)
    elif not length:
        return b""
    elif not length.isdigit():  # int() would take "+5", " 5", "-1" and "1_000"
        raise BadRequestBodyError(400, "Content-Length is not a number")
    elif int(length) > MAX_BODY_BYTES:
        raise BadRequestBodyError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    else:
        body = _read_input(environ, int(length))
        if len(body) < int(length):
            raise BadRequestBodyError(400, "request body is shorter than its Content-Length")
    if len(body) > MAX_BODY_BYTES:
        raise BadRequestBodyError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    return body


def _read_input(environ: dict[str, Any], size: int) -> bytes:
    try:
        return bytes(environ["wsgi.input"].read(size))
    except Exception:  # the server's own: uWSGI's OSError after its timeout, gunicorn's parse errors...
        raise BadRequestBodyError(400, "request body is shorter than declared, or malformed") from None


def _read_chunked(environ: dict[str, Any]) -> bytes:
    """At most one byte over the limit. gunicorn dechunks ``wsgi.input`` itself (and says
    so: ``wsgi.input_terminated``); uWSGI's ``http-socket`` has ``uwsgi.chunked_read``."""
    if environ.get("wsgi.input_terminated"):
        return _read_input(environ, MAX_BODY_BYTES + 1)
    try:
        import uwsgi
    except ImportError:
        raise BadRequestBodyError(400, "a chunked request body is not supported by this server") from None
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= MAX_BODY_BYTES and (chunk := uwsgi.chunked_read(CHUNK_TIMEOUT_SECONDS)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError:
        raise BadRequestBodyError(400, "a chunk of the request body is malformed, or late") from None
    return b"".join(chunks)
