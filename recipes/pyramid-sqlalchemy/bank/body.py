"""Reading a request body: its size is checked before a byte of it is read."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPLengthRequired, HTTPRequestEntityTooLarge
from pyramid.request import Request

from bankaccounts.web import MAX_BODY_BYTES, JSONBody, parse_json_object


def check_body_size(request: Request) -> None:
    """Refuse a body that is declared too large (413), or whose size is not declared (411)."""
    length = request.content_length
    if length is None and "Transfer-Encoding" in request.headers:
        msg = "a request body needs a Content-Length header"
        raise HTTPLengthRequired(msg)
    if length is not None and length > MAX_BODY_BYTES:
        msg = f"request body is larger than {MAX_BODY_BYTES} bytes"
        raise HTTPRequestEntityTooLarge(msg)


def json_body(request: Request) -> JSONBody:
    """The body as a JSON object, with checked field access (400 if it is not one)."""
    check_body_size(request)
    # request.body rewinds after reading: a retried request reads it again.
    return parse_json_object(request.body, request.headers.get("Content-Type"))
