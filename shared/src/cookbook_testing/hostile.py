"""Hostile requests, and the answer the contract gives each (``docs/http-contract.rst``).

Each ``Case`` is one request a careless or malicious client sends, sent by
``HttpContract.test_a_hostile_request_is_refused_and_changes_nothing`` to every
web recipe: in process, and over uWSGI and gunicorn. None may be answered with
a 5xx, every refusal is the JSON error body, and no account changes. ``{id}``
in a path is an open account's id; ``{other}`` another's.

These go through the clients of ``cookbook_testing.http``, so each is a
well-formed HTTP request. What only a raw socket can send (a bad
``Content-Length``, a truncated or chunked body, a garbage request line) is
answered by the server before the application, and is checked over the
servers alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

JSON = {"Content-Type": "application/json"}
OPEN = "/accounts"
DEPOSIT = "/accounts/{id}/deposit"
TRANSFER = "/accounts/{id}/transfer"
#: A Host no recipe answers for by default (ALLOWED_HOSTS: the loopback names).
FOREIGN_HOST = "evil.example"


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    method: str = "POST"
    path: str = DEPOSIT
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def details(full_name: str = "Ada Lovelace", email_address: str = "ada@example.com") -> bytes:
    """An open-account body; ``json.dumps`` writes a lone surrogate as its ``\\ud800`` escape."""
    return json.dumps({"full_name": full_name, "email_address": email_address}).encode()


def deep(depth: int) -> bytes:
    return b'{"amount": ' + b"[" * depth + b"]" * depth + b"}"


CASES = [
    # Text that is not text.
    Case("lone surrogate in a name", 400, path=OPEN, body=details("x\ud800y"), headers=JSON),
    Case("lone surrogate in an email address", 400, path=OPEN, body=details(email_address="a\udfff@b.c"), headers=JSON),
    Case(
        "surrogate encoded as UTF-8 bytes",
        400,
        path=OPEN,
        body=b'{"full_name": "x\xed\xa0\x80", "email_address": "a@b.c"}',
        headers=JSON,
    ),
    Case("NUL in a name", 400, path=OPEN, body=details("Ada\x00"), headers=JSON),
    Case("newline in a name", 400, path=OPEN, body=details("Ada\nLovelace"), headers=JSON),
    Case("C1 control in a name", 400, path=OPEN, body=details("Ada\x85"), headers=JSON),
    Case("right-to-left override in a name", 400, path=OPEN, body=details("\u202eecalevoL"), headers=JSON),
    Case("bidi isolate in an email address", 400, path=OPEN, body=details(email_address="\u2066a@b.c"), headers=JSON),
    # Bodies that are not UTF-8 JSON.
    Case("Latin-1 body", 400, path=OPEN, body=b'{"full_name": "Zo\xeb", "email_address": "a@b.c"}', headers=JSON),
    Case("UTF-16 body", 400, path=OPEN, body=details().decode().encode("utf-16"), headers=JSON),
    Case("UTF-8 byte order mark", 400, body=b'\xef\xbb\xbf{"amount": 5}', headers=JSON),
    Case("a field named twice", 400, body=b'{"amount": 1, "amount": 100000}', headers=JSON),
    Case("NaN", 400, body=b'{"amount": NaN}', headers=JSON),
    Case("Infinity", 400, body=b'{"amount": Infinity}', headers=JSON),
    Case("-Infinity", 400, body=b'{"amount": -Infinity}', headers=JSON),
    Case("a number of 5000 digits", 400, body=b'{"amount": ' + b"9" * 5000 + b"}", headers=JSON),
    Case("a float that overflows", 400, body=b'{"amount": 1e400}', headers=JSON),
    Case("an integral float", 400, body=b'{"amount": 1e2}', headers=JSON),
    Case("negative zero", 400, body=b'{"amount": -0}', headers=JSON),
    Case("deep nesting", 400, body=deep(30_000), headers=JSON),  # 60 KB: under the size limit
    Case("nesting within the limits", 400, body=deep(500), headers=JSON),
    Case("two objects", 400, body=b'{"amount": 5}{"amount": 5}', headers=JSON),
    Case("trailing garbage", 400, body=b'{"amount": 5} x', headers=JSON),
    Case(
        "a transfer to a malformed id", 400, path=TRANSFER, body=b'{"to_account_id": "../x", "amount": 1}', headers=JSON
    ),
    # Bodies not sent as JSON.
    Case("JSON as text/plain", 415, body=b'{"amount": 5}', headers={"Content-Type": "text/plain"}),
    Case("a form", 415, body=b"amount=5", headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Case(
        "multipart", 415, body=b"--x\r\n\r\n5\r\n--x--\r\n", headers={"Content-Type": "multipart/form-data; boundary=x"}
    ),
    Case("no Content-Type", 415, body=b'{"amount": 5}'),
    Case(
        "JSON declared UTF-16", 415, body=b'{"amount": 5}', headers={"Content-Type": "application/json; charset=utf-16"}
    ),
    Case("a body over the limit", 413, body=b'{"amount": 5, "pad": "' + b"x" * 65536 + b'"}', headers=JSON),
    # Methods and paths.
    Case("OPTIONS", 405, method="OPTIONS", path=OPEN),
    Case("an unknown method", 405, method="BREW", path="/accounts/{id}"),
    Case("PATCH an account", 405, method="PATCH", path="/accounts/{id}", body=b'{"balance": 1}', headers=JSON),
    Case("HEAD a write", 405, method="HEAD", path=DEPOSIT),
    Case("an id of dots", 404, method="GET", path="/accounts/%2E%2E"),
    Case("an id of 1000 characters", 404, method="GET", path="/accounts/" + "a" * 1000),
    Case("an id with a NUL", 404, method="GET", path="/accounts/{id}%00"),
    Case("an id with a bidi override", 404, method="GET", path="/accounts/%E2%80%AE{id}"),
    Case("a deposit to an id with a NUL", 404, path="/accounts/{id}%00/deposit", body=b'{"amount": 5}', headers=JSON),
    # Hosts this service does not answer for (ALLOWED_HOSTS).
    Case("a foreign Host, writing", 400, body=b'{"amount": 5}', headers={**JSON, "Host": FOREIGN_HOST}),
    Case("a foreign Host, reading", 400, method="GET", path="/accounts/{id}", headers={"Host": FOREIGN_HOST}),
    Case("a foreign Host, an unknown path", 400, method="GET", path="/nothing-here", headers={"Host": FOREIGN_HOST}),
    Case("a Host that is no host name", 400, method="GET", path="/health", headers={"Host": "a b"}),
]


@dataclass(frozen=True)
class RawCase:
    """A request only a raw socket sends, answered ``statuses``: by the application (with
    the JSON error), or by the server before it (gunicorn's own HTML page; ``None``: the
    connection closed without an answer, as uWSGI does to a request over its buffer)."""

    name: str
    request: bytes
    statuses: frozenset[int | None]
    #: Where they differ under a server that takes a half-close for a client gone: a
    #: request whose body is cut short by the client's half-close is answered by no one
    #: under uvicorn (None); Granian hands the application a short body (400).
    half_close_gone: frozenset[int | None] | None = None
    #: Servers that read the body as chunked and ignore the Content-Length, as RFC 9112
    #: (6.3) lets a server do, closing the connection after: the application never sees
    #: the length, and the deposit is applied, once (Granian).
    read_as_chunked_by: frozenset[str] = frozenset()

    def answers(self, half_close_is_a_client_gone: bool) -> frozenset[int | None]:
        """The statuses it may be answered, under a server that does or does not take a
        half-close for a client gone (``ContractOverServer.half_close_is_a_client_gone``)."""
        if half_close_is_a_client_gone and self.half_close_gone is not None:
            return self.half_close_gone
        return self.statuses


def raw(head: str, body: bytes = b"") -> bytes:
    """A request to deposit into ``{id}``: ``head`` holds its headers after the Host."""
    start = "POST /accounts/{id}/deposit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return f"{start}{head}\r\n".encode() + body


def chunked(*chunks: bytes, end: bytes = b"0\r\n\r\n") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + end


AMOUNT = b'{"amount": 5}'
RAW_CASES = [
    RawCase("Content-Length that is not a number", raw("Content-Length: abc\r\n", AMOUNT), frozenset({400})),
    RawCase("a negative Content-Length", raw("Content-Length: -5\r\n", AMOUNT), frozenset({400})),
    RawCase(
        "a body shorter than its Content-Length",
        raw("Content-Length: 100\r\n", AMOUNT),
        frozenset({400}),
        half_close_gone=frozenset({400, None}),
    ),
    RawCase("a malformed chunk size", raw("Transfer-Encoding: chunked\r\n", b"zz\r\n" + AMOUNT), frozenset({400})),
    RawCase(
        "a chunk longer than its size",
        raw("Transfer-Encoding: chunked\r\n", b"2\r\n" + AMOUNT + b"\r\n0\r\n\r\n"),
        frozenset({400}),
    ),
    RawCase(
        "a chunked body that never ends",
        raw("Transfer-Encoding: chunked\r\n", b"5\r\n" + AMOUNT[:5] + b"\r\n"),
        frozenset({400}),
        half_close_gone=frozenset({400, None}),
    ),
    RawCase(
        "Transfer-Encoding and Content-Length at once",
        raw(f"Transfer-Encoding: chunked\r\nContent-Length: {len(chunked(AMOUNT))}\r\n", chunked(AMOUNT)),
        frozenset({400}),
        half_close_gone=frozenset({400, None}),  # half-closed, uvicorn answers no one; kept open, the application's 400
        read_as_chunked_by=frozenset({"granian"}),
    ),
    RawCase("a request line that is none", b"GARBAGE\r\n\r\n", frozenset({400, None})),
    RawCase(
        "a URL of 10 KB",
        b"GET /accounts/" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        frozenset({400, 404, 414, 431, None}),  # 431: Granian counts the line in its head's limit
    ),
    RawCase(
        "a header of 10 KB",
        raw("X-Padding: " + "a" * 10_000 + "\r\nContent-Length: 13\r\n", AMOUNT),
        frozenset({400, 431, None}),
    ),
]
