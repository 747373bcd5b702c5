from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest

from bankaccounts.domain import (
    AccountClosedError,
    AccountNotFoundError,
    CommandIdReusedError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidRequestError,
)
from bankaccounts.retry import ConflictUnresolvedError, worth_running_again
from bankaccounts.timeouts import RequestTimeoutError
from bankaccounts.unavailable import no_connection
from bankaccounts.web import (
    ANSWERED_ERRORS,
    MAX_BODY_BYTES,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    BodyTooLargeError,
    UnsupportedMediaTypeError,
    command_id_for,
    parse_account_id,
    parse_json_object,
    status_for,
    store_unavailable,
)

JSON = "application/json"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" \n",
        b"{",
        b"[1]",
        b'"s"',
        b"null",
        b"\xff",
        b"[" * 10_000,
        b'{"a": ' * 10_000,
        b'{"amount": 1, "amount": 1000}',  # which one? neither
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"amount": -Infinity}',
        b'{"amount": ' + b"9" * 5000 + b"}",  # longer than Python converts
        '{"full_name": "Ada"}'.encode("utf-16"),  # JSON is UTF-8; no other encoding is guessed
        '{"full_name": "Ada"}'.encode("utf-16-le"),
        b'\xef\xbb\xbf{"full_name": "Ada"}',  # a byte order mark
        b'{"full_name": "\xed\xa0\x80"}',  # a surrogate in UTF-8 bytes: not UTF-8
    ],
    ids=lambda raw: repr(raw[:24]),
)
def test_bodies_that_are_not_one_json_object_in_utf8_are_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse_json_object(raw, JSON)
    assert status_for(refused.value) == 400


def test_a_body_over_the_limit_is_413() -> None:
    with pytest.raises(BodyTooLargeError) as refused:
        parse_json_object(b" " * (MAX_BODY_BYTES + 1), JSON)
    assert status_for(refused.value) == 413


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
        "text/json",
    ],
)
def test_a_body_not_sent_as_json_is_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as refused:
        parse_json_object(b'{"amount": 5}', content_type)
    assert status_for(refused.value) == 415


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON", "application/json; charset=utf-8", 'application/json;charset="UTF-8"'],
)
def test_json_in_any_spelling_of_its_media_type_is_read(content_type: str) -> None:
    assert parse_json_object(b'{"amount": 5}', content_type).integer("amount") == 5


def test_typed_fields() -> None:
    body = parse_json_object(
        b'{"amount": 5, "flag": true, "name": "x", "id": "%s"}' % str(uuid.UUID(int=7)).encode(), JSON
    )
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
def test_status_codes(error: Exception, status: int) -> None:
    """Each is one of the errors views answer (``ANSWERED_ERRORS``), with its status."""
    assert isinstance(error, ANSWERED_ERRORS)
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
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # hold the write lock
    waiter = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as locked:
        waiter.execute("BEGIN IMMEDIATE")
    assert store_unavailable(locked.value)
    assert not no_connection(locked.value)  # a lock held: another try may find it free
    with pytest.raises(sqlite3.OperationalError) as missing:
        waiter.execute("SELECT * FROM no_such_table")
    assert not store_unavailable(missing.value)
    holder.close()
    waiter.close()


def test_a_task_queue_runs_again_what_may_succeed_later_and_nothing_else() -> None:
    assert worth_running_again(sqlite3.OperationalError("database is locked"))
    assert worth_running_again(RequestTimeoutError("x"))
    assert worth_running_again(ConflictUnresolvedError("lost every race"))
    assert not worth_running_again(InsufficientFundsError("x"))
    assert not worth_running_again(ValueError("x"))


def test_errors_of_the_application_are_not_unavailability() -> None:
    assert not store_unavailable(InsufficientFundsError("x"))
    assert not store_unavailable(ValueError("x"))
