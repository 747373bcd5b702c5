"""HTTP clients the contract suite drives: one interface, in-process or over a socket.

A framework's own test client is adapted to ``Client``: Flask's
(``FlaskTestClient``), Django's (``DjangoTestClient``), Starlette's
(``StarletteTestClient``, FastAPI's too), any WSGI callable
(``WSGIClient``); WebTest by a recipe's own subclass. ``HTTPClient`` talks to
a real server over a real TCP connection. The adapters use only the methods
of the client they are given, so this module imports no framework.
"""

from __future__ import annotations

import http.client
import io
import json as jsonlib
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.util import setup_testing_defaults

NO_BODY = object()


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError:
            msg = f"response {self.status} is not JSON: {self.body[:500]!r}"
            raise AssertionError(msg) from None


class Client:
    """Base class: ``get``/``post`` in terms of ``send``, which subclasses implement."""

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        raise NotImplementedError

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = NO_BODY,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        headers = dict(headers or {})
        if json is not NO_BODY:
            data = jsonlib.dumps(json).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        return self.send(method, path, data, headers)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(
        self, path: str, *, json: Any = NO_BODY, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        return self.request("POST", path, json=json, data=data, headers=headers)


class WSGIClient(Client):
    """Calls a WSGI application in this process, as a server would (standard library only)."""

    def __init__(self, application: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]) -> None:
        self.application = application

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path.split("?")[0]}
        setup_testing_defaults(environ)
        environ["wsgi.input"] = io.BytesIO(body or b"")
        environ["CONTENT_LENGTH"] = str(len(body or b""))
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"] = int(status.split()[0])
            captured["headers"] = {name.lower(): value for name, value in response_headers}

        chunks = self.application(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return Response(status=captured["status"], body=data, headers=captured["headers"])


class FlaskTestClient(Client):
    """Flask's test client (``app.test_client()``) as the contract suite's client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        response = self.client.open(path, method=method, data=body, headers=headers)
        return Response(
            status=response.status_code,
            body=response.get_data(),
            headers={k.lower(): v for k, v in response.headers.items()},
        )


class WebTestClient(Client):
    """WebTest's ``TestApp`` (Pyramid's test client) as the contract suite's client."""

    def __init__(self, testapp: Any) -> None:
        self.testapp = testapp

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        response = self.testapp.request(path, method=method, body=body or b"", headers=headers, expect_errors=True)
        return Response(
            status=response.status_int,
            body=response.body,
            headers={name.lower(): value for name, value in response.headerlist},
        )


class DjangoTestClient(Client):
    """Django's test client (``django.test.Client()``) as the contract suite's client.

    Every request carries ``X-Forwarded-Proto: https``, as it would behind the
    TLS proxy that production settings expect (they redirect plain HTTP).
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        # Django's client declares a Content-Type only with a body: given one, it is sent
        # as it would be over a socket, body or none (CONTENT_TYPE, straight into the environ).
        declared = {"CONTENT_TYPE": headers["Content-Type"]} if "Content-Type" in headers else {}
        response = self.client.generic(
            method,
            path,
            data=body or b"",
            content_type=headers.get("Content-Type", "application/octet-stream"),
            headers={"X-Forwarded-Proto": "https", **{k: v for k, v in headers.items() if k != "Content-Type"}},
            **declared,
        )
        return Response(
            status=response.status_code,
            body=response.content,
            headers={name.lower(): value for name, value in response.headers.items()},
        )


class StarletteTestClient(Client):
    """Starlette's (and so FastAPI's) ``TestClient``, as the contract suite's client.

    Enter the ``TestClient`` first (``with TestClient(app) as client``): that
    runs the app's lifespan, as a server's worker would.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        # As bytes, as a socket carries them: the client would refuse a value that is not ASCII.
        raw = {name: value.encode("latin-1", "replace") for name, value in headers.items()}
        response = self.client.request(method, path, content=body, headers=raw)
        return Response(
            status=response.status_code,
            body=response.content,
            headers={name.lower(): value for name, value in response.headers.items()},
        )


class HTTPClient(Client):
    """A real HTTP/1.1 client over TCP; one connection per request, safe across threads."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Response(
                status=response.status,
                body=response.read(),
                headers={k.lower(): v for k, v in response.getheaders()},
            )
        finally:
            connection.close()


def exchange_raw(
    host: str, port: int, request: bytes, timeout: float = 15.0, *, half_close: bool = True
) -> Response | None:
    """Send ``request`` as it is, close the sending side, and read the answer until the
    server closes. None: it closed (or reset) the connection without an answer.

    ``half_close=False`` keeps the sending side open, and reads one answer (by its
    Content-Length): ASGI servers take a half-closed connection for a client that
    has gone, and answer nothing, even to a whole request.
    """
    received = b""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        try:
            connection.sendall(request)
            if half_close:
                connection.shutdown(socket.SHUT_WR)
            while chunk := connection.recv(65536):
                received += chunk
                if not half_close and _answer_complete(received):
                    break
        except TimeoutError:
            raise
        except OSError:  # reset, or closed before all was sent: answered or not by what came first
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        return None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in header_lines if ":" in line)
    return Response(
        status=int(status_line.split()[1]),
        body=body,
        headers={name.strip().lower(): value.strip() for name, value in headers.items()},
    )


def _answer_complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False
