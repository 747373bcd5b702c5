from __future__ import annotations

import uuid
from typing import Any

import pytest

from bankaccounts.domain import (
    AccountClosedError,
    AccountNotFoundError,
    BankAccountsError,
    CommandIdReusedError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidRequestError,
)
from bankaccounts.retry import ConflictUnresolvedError
from bankaccounts.web import (
    MAX_BODY_BYTES,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    command_id_for,
    parse_account_id,
    parse_json_object,
    status_for,
    store_unavailable,
)


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


def test_a_write_without_a_key_gets_an_id_of_its_own() -> None:
    assert command_id_for(None).startswith("request:")
    assert command_id_for(None) != command_id_for(None)


def test_a_key_is_the_command_id_in_its_own_namespace() -> None:
    key = str(uuid.uuid4())
    assert command_id_for(key) == command_id_for(f" {key} ") == f"idempotency-key:{key}"
    assert command_id_for("request:x") != "request:x"  # a key never names a generated id


@pytest.mark.parametrize("key", ["", "   ", "a b", "caf\u00e9", "x\x00", "k" * (MAX_IDEMPOTENCY_KEY_LENGTH + 1)])
def test_keys_that_are_not_short_visible_ascii_are_refused(key: str) -> None:
    with pytest.raises(InvalidRequestError, match="Idempotency-Key"):
        command_id_for(key)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidAmountError("x"), 400),
        (AccountNotFoundError("x"), 404),
        (AccountClosedError("x"), 409),
        (InsufficientFundsError("x"), 409),
        (ConflictUnresolvedError("x"), 409),
        (CommandIdReusedError("x"), 422),
    ],
)
def test_status_codes(error: BankAccountsError, status: int) -> None:
    assert status_for(error) == status


def test_a_refused_postgresql_connection_is_unavailable_through_every_wrapper() -> None:
    """A real refusal (nothing listens on the port), as psycopg raises it, and as a store re-raises it."""
    import socket

    import psycopg
    from eventsourcing.persistence import OperationalError

    with socket.socket() as sock:  # a port with nothing behind it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(f"postgresql://nobody@127.0.0.1:{port}/none", connect_timeout=2)
    assert store_unavailable(refused.value)
    try:
        raise OperationalError(str(refused.value)) from refused.value  # as eventsourcing wraps it
    except OperationalError as wrapped:
        assert store_unavailable(wrapped)


def test_sqlite_is_unavailable_when_locked_but_not_when_a_table_is_missing(tmp_path: Any) -> None:
    import sqlite3

    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # hold the write lock
    waiter = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as locked:
        waiter.execute("BEGIN IMMEDIATE")
    assert store_unavailable(locked.value)
    with pytest.raises(sqlite3.OperationalError) as missing:
        waiter.execute("SELECT * FROM no_such_table")
    assert not store_unavailable(missing.value)
    holder.close()
    waiter.close()


def test_errors_of_the_application_are_not_unavailability() -> None:
    assert not store_unavailable(InsufficientFundsError("x"))
    assert not store_unavailable(ValueError("x"))
