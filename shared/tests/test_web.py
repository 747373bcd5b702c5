from __future__ import annotations

import uuid

import pytest

from bankaccounts.domain import (
    AccountClosedError,
    AccountNotFoundError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidRequestError,
)
from bankaccounts.retry import ConflictUnresolvedError
from bankaccounts.web import MAX_BODY_BYTES, parse_account_id, parse_json_object, status_for


@pytest.mark.parametrize(
    "raw", [b"", b" \n", b"{", b"[1]", b'"s"', b"null", b"\xff", b"[" * 10_000, b" " * (MAX_BODY_BYTES + 1)]
)
def test_bodies_that_are_not_one_json_object_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        parse_json_object(raw)


def test_typed_fields() -> None:
    body = parse_json_object(b'{"amount": 5, "flag": true, "name": "x", "id": "%s"}' % str(uuid.UUID(int=7)).encode())
    assert body.integer("amount") == 5
    assert body.string("name") == "x"
    assert body.uuid("id") == uuid.UUID(int=7)
    for name, reader in [
        ("flag", body.integer),
        ("amount", body.string),
        ("missing", body.integer),
        ("name", body.uuid),
    ]:
        with pytest.raises(InvalidRequestError, match=name):
            reader(name)


def test_malformed_account_ids_name_no_account() -> None:
    with pytest.raises(AccountNotFoundError):
        parse_account_id("not-a-uuid")
    assert parse_account_id(str(uuid.UUID(int=3))) == uuid.UUID(int=3)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidAmountError("x"), 400),
        (AccountNotFoundError("x"), 404),
        (AccountClosedError("x"), 409),
        (InsufficientFundsError("x"), 409),
        (ConflictUnresolvedError("x"), 409),
    ],
)
def test_status_codes(error: Exception, status: int) -> None:
    assert status_for(error) == status  # type: ignore[arg-type]
