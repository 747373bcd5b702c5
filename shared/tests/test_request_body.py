"""read_whole_body: the application gets a body whole and of its declared length, or is
never called; what is malformed is answered with the contract's JSON error."""

from __future__ import annotations

import io
import json
from typing import Any
from wsgiref.handlers import SimpleHandler
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from bankaccounts.request_body import read_whole_body
from bankaccounts.web import MAX_BODY_BYTES


class Unreadable(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        raise OSError("error during read on wsgi.input")  # what uWSGI raises after its timeout


def call(environ: dict[str, Any], body: bytes | io.BytesIO = b"") -> tuple[str, dict[str, Any] | None, bytes]:
    """(status, the environ the application saw or None, the answer's body)."""
    seen: list[dict[str, Any]] = []

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append({**environ, "body": environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))})
        start_response("200 OK", [])
        return [b"ok"]

    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "wsgi.input": body if isinstance(body, io.BytesIO) else io.BytesIO(body),
        **environ,
    }
    answer = b"".join(read_whole_body(application)(environ, lambda status, headers: statuses.append(status)))
    return statuses[0], (seen[0] if seen else None), answer


def test_a_body_of_its_declared_length_reaches_the_application() -> None:
    status, seen, _ = call({"CONTENT_LENGTH": "13"}, b'{"amount": 5}and more')
    assert status == "200 OK"
    assert seen is not None and seen["body"] == b'{"amount": 5}'


def test_no_body_is_an_empty_one() -> None:
    status, seen, _ = call({"REQUEST_METHOD": "GET"})
    assert (status, seen is not None and seen["CONTENT_LENGTH"]) == ("200 OK", "0")


def test_a_dechunked_body_gets_its_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn dechunks ``wsgi.input`` and declares no length: it is read to its end."""
    environ = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}
    status, seen, _ = call(environ, b'{"amount": 5}')
    assert status == "200 OK"
    assert seen is not None
    assert (seen["body"], seen["CONTENT_LENGTH"], "HTTP_TRANSFER_ENCODING" in seen) == (b'{"amount": 5}', "13", False)


@pytest.mark.parametrize(
    ("environ", "body", "status"),
    [
        ({"CONTENT_LENGTH": "abc"}, b"{}", "400"),
        ({"CONTENT_LENGTH": "-5"}, b"{}", "400"),
        ({"CONTENT_LENGTH": "+2"}, b"{}", "400"),
        ({"CONTENT_LENGTH": "100"}, b'{"amount": 5}', "400"),  # shorter than declared
        ({"CONTENT_LENGTH": "13"}, Unreadable(), "400"),
        ({"CONTENT_LENGTH": str(MAX_BODY_BYTES + 1)}, Unreadable(), "413"),  # never read
        (
            {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True},
            b"x" * (MAX_BODY_BYTES + 1),
            "413",
        ),
        (
            {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": "2", "wsgi.input_terminated": True},
            b"{}",
            "400",
        ),
        ({"HTTP_TRANSFER_ENCODING": "gzip"}, b"{}", "400"),
        ({"HTTP_TRANSFER_ENCODING": "chunked"}, b"{}", "400"),  # no server here to dechunk it
        ({"REQUEST_METHOD": ""}, b"", "400"),
    ],
)
def test_a_malformed_body_is_answered_and_never_reaches_the_application(
    environ: dict[str, Any], body: bytes | io.BytesIO, status: str
) -> None:
    answered, seen, answer = call(environ, body)
    assert (answered.split()[0], seen) == (status, None)  # the reason phrase varies with Python's version
    assert set(json.loads(answer)) == {"error"}


def test_its_refusals_are_served_by_the_standard_librarys_server() -> None:
    """wsgiref's handler (``python wsgi.py``'s server) enforces PEP 3333: an application's
    hop-by-hop header, such as ``Connection: close``, would turn the refusal into a 500."""

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AssertionError("a body over the limit must not reach the application")

    environ: dict[str, Any] = {"QUERY_STRING": ""}
    setup_testing_defaults(environ)
    environ.update(REQUEST_METHOD="POST", CONTENT_LENGTH=str(MAX_BODY_BYTES + 1))
    output, errors = io.BytesIO(), io.StringIO()
    SimpleHandler(io.BytesIO(b""), output, errors, environ).run(validator(read_whole_body(application)))
    head, _, body = output.getvalue().partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"413", (head, errors.getvalue())
    assert set(json.loads(body)) == {"error"}
