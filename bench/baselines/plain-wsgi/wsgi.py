"""Baseline for the plain WSGI recipe: the same routes, a balance row instead of events.

A standard-library WSGI callable on the database driver alone (psycopg 3, or
sqlite3), as the recipe is on eventsourcing's own stores alone. A deposit is
one atomic ``UPDATE ... SET balance = balance + amount ... RETURNING``; a read
is one ``SELECT``. Each worker opens its own connection on its first request,
after the fork; the master only creates the table, and closes what it opened.
Served with the recipe's own uwsgi.ini (``module = wsgi:application``).

``BASELINE_DEPOSIT=ledger`` (PostgreSQL only) makes a deposit do what the
recipe's guarantees need on a plain table: in one transaction, the account's
row locked, the command recorded by its id (its ``Idempotency-Key``, or a new
one) unless it was already applied, the balance updated and a ledger row
appended. The cheapest write and this like-for-like one bracket the recipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import uuid
from http import HTTPStatus
from typing import Any

from bankaccounts.config import DatabaseConfig

CONFIG = DatabaseConfig.from_env()
LEDGER = os.environ.get("BASELINE_DEPOSIT", "update") == "ledger"
if LEDGER and CONFIG.store != "postgresql":
    raise SystemExit("BASELINE_DEPOSIT=ledger: PostgreSQL only")
COLUMNS = "id, full_name, email_address, balance, overdraft_limit, is_closed, version"
ACCOUNT = re.compile(r"/accounts/(?P<account_id>[^/]+)(?P<deposit>/deposit)?")

if CONFIG.store == "postgresql":
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS accounts (id uuid PRIMARY KEY, full_name text NOT NULL, "
        "email_address text NOT NULL, balance bigint NOT NULL DEFAULT 0, overdraft_limit bigint NOT NULL DEFAULT 0, "
        "is_closed boolean NOT NULL DEFAULT false, version integer NOT NULL DEFAULT 1)"
    )
    INSERT = (
        "INSERT INTO accounts (id, full_name, email_address) VALUES (%s, %s, %s) "
        "RETURNING id, full_name, email_address, balance, overdraft_limit, is_closed, version"
    )
    SELECT = (
        "SELECT id, full_name, email_address, balance, overdraft_limit, is_closed, version FROM accounts WHERE id = %s"
    )
    DEPOSIT = (
        "UPDATE accounts SET balance = balance + %s, version = version + 1 WHERE id = %s "
        "RETURNING id, full_name, email_address, balance, overdraft_limit, is_closed, version"
    )
    LEDGER_SCHEMA = (
        "CREATE TABLE IF NOT EXISTS applied_commands (command_id text PRIMARY KEY, account_id uuid NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ledger (account_id uuid NOT NULL, version integer NOT NULL, "
        "amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (account_id, version))",
    )
    LOCK = f"{SELECT} FOR UPDATE"
    RECORD_COMMAND = "INSERT INTO applied_commands VALUES (%s, %s) ON CONFLICT (command_id) DO NOTHING"
    APPEND = "INSERT INTO ledger (account_id, version, amount) VALUES (%s, %s, %s)"
else:
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS accounts (id text PRIMARY KEY, full_name text NOT NULL, "
        "email_address text NOT NULL, balance integer NOT NULL DEFAULT 0, overdraft_limit integer NOT NULL DEFAULT 0, "
        "is_closed integer NOT NULL DEFAULT 0, version integer NOT NULL DEFAULT 1)"
    )
    INSERT = (
        "INSERT INTO accounts (id, full_name, email_address) VALUES (?, ?, ?) "
        "RETURNING id, full_name, email_address, balance, overdraft_limit, is_closed, version"
    )
    SELECT = (
        "SELECT id, full_name, email_address, balance, overdraft_limit, is_closed, version FROM accounts WHERE id = ?"
    )
    DEPOSIT = (
        "UPDATE accounts SET balance = balance + ?, version = version + 1 WHERE id = ? "
        "RETURNING id, full_name, email_address, balance, overdraft_limit, is_closed, version"
    )


def connect() -> Any:
    """A connection in autocommit mode: each statement is its own transaction."""
    if CONFIG.store == "postgresql":
        # Imported only here, as the recipe imports its PostgreSQL store only when
        # it uses it: on SQLite, neither process carries psycopg in its memory.
        import psycopg

        return psycopg.connect(CONFIG.url, autocommit=True)
    connection = sqlite3.connect(CONFIG.sqlite_path, timeout=20, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")  # as eventsourcing's SQLite store sets it
    return connection


def create_schema() -> None:
    with contextlib.closing(connect()) as connection:
        for statement in (SCHEMA, *LEDGER_SCHEMA) if LEDGER else (SCHEMA,):
            connection.execute(statement)


_connection: tuple[int, Any] | None = None


def connection() -> Any:
    """This process's connection, opened on first use: never one inherited across a fork."""
    global _connection
    if _connection is None or _connection[0] != os.getpid():
        _connection = (os.getpid(), connect())
    return _connection[1]


def key(text: str) -> Any:
    account_id = uuid.UUID(text)
    return account_id if CONFIG.store == "postgresql" else str(account_id)


def as_json(row: Any) -> dict[str, Any]:
    names = COLUMNS.split(", ")
    account = dict(zip(names, row, strict=True))
    account["id"], account["is_closed"] = str(account["id"]), bool(account["is_closed"])
    return account


def deposit_once(account_id: Any, amount: int, command_id: str) -> Any:
    """``BASELINE_DEPOSIT=ledger``: the deposit applied once, with its history, in one transaction."""
    with connection().transaction() as transaction:
        row = transaction.connection.execute(LOCK, (account_id,)).fetchone()
        if row is None or transaction.connection.execute(RECORD_COMMAND, (command_id, account_id)).rowcount == 0:
            return row  # no such account, or this command was applied before: the account as it is
        row = transaction.connection.execute(DEPOSIT, (amount, account_id)).fetchone()
        transaction.connection.execute(APPEND, (account_id, row[-1], amount))
        return row


def handle(method: str, path: str, body: bytes, command_id: str | None = None) -> tuple[int, Any]:
    if path == "/health" and method == "GET":
        return 200, {"status": "ok", "pid": os.getpid()}
    if path == "/accounts" and method == "POST":
        fields = json.loads(body)
        row = connection().execute(INSERT, (key(str(uuid.uuid4())), fields["full_name"], fields["email_address"]))
        return 201, as_json(row.fetchone())
    match = ACCOUNT.fullmatch(path)
    if match is None:
        return 404, {"error": f"no such path: {path}"}
    try:
        account_id = key(match["account_id"])
    except ValueError:
        return 404, {"error": "account not found"}
    if match["deposit"] and method == "POST" and LEDGER:
        row = deposit_once(account_id, int(json.loads(body)["amount"]), command_id or str(uuid.uuid4()))
    elif match["deposit"] and method == "POST":
        row = connection().execute(DEPOSIT, (int(json.loads(body)["amount"]), account_id)).fetchone()
    elif not match["deposit"] and method == "GET":
        row = connection().execute(SELECT, (account_id,)).fetchone()
    else:
        return 405, {"error": f"method {method} is not allowed here"}
    return (200, as_json(row)) if row else (404, {"error": "account not found"})


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    path, command_id = environ.get("PATH_INFO") or "/", environ.get("HTTP_IDEMPOTENCY_KEY")
    status, payload = handle(environ["REQUEST_METHOD"], path, body, command_id)
    data = json.dumps(payload).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


create_schema()
