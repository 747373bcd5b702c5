"""Baseline for the RQ recipe: the same jobs by the same names, writing a balance row directly.

A client enqueues ``"jobs.deposit"`` with ``[account_id, amount]`` exactly as
it does for the recipe (JSON, by name); this module is the ``jobs`` that a
worker started from this folder imports instead of the recipe's. Run it on
the recipe's own worker classes, less the application (``baseline_workers.py``).

A deposit is one transaction on PostgreSQL through psycopg: record the job id
(the same exactly-once guarantee the recipe gives by passing the job id as
its command id) and, if it was new, ``UPDATE ... SET balance = balance +
amount``. Each process opens its own connection on first use: a forked or
spawned work horse one per job (closed before it exits, as the recipe's horse
closes its application), ``SimpleWorker`` one for all its jobs.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

import psycopg
from rq import get_current_job

from bankaccounts.config import DatabaseConfig

__all__ = ["deposit", "get_account", "open_account"]

CONFIG = DatabaseConfig.from_env()
COLUMNS = "id, full_name, email_address, balance, overdraft_limit, is_closed, version"
SELECT = "SELECT id, full_name, email_address, balance, overdraft_limit, is_closed, version FROM accounts WHERE id = %s"
DEPOSIT = (
    "UPDATE accounts SET balance = balance + %s, version = version + 1 WHERE id = %s "
    "RETURNING id, full_name, email_address, balance, overdraft_limit, is_closed, version"
)
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS accounts (id uuid PRIMARY KEY, full_name text NOT NULL, "
    "email_address text NOT NULL, balance bigint NOT NULL DEFAULT 0, overdraft_limit bigint NOT NULL DEFAULT 0, "
    "is_closed boolean NOT NULL DEFAULT false, version integer NOT NULL DEFAULT 1)",
    "CREATE TABLE IF NOT EXISTS applied_commands (command_id text PRIMARY KEY, account_id uuid NOT NULL)",
]
if CONFIG.store != "postgresql":
    msg = "the RQ baseline runs on PostgreSQL only: set DATABASE_URL=postgresql://..."
    raise RuntimeError(msg)

_connection: tuple[int, psycopg.Connection[Any]] | None = None


def connection() -> psycopg.Connection[Any]:
    """This process's connection, opened on first use: never one inherited across a fork."""
    global _connection
    if _connection is None or _connection[0] != os.getpid():
        _connection = (os.getpid(), psycopg.connect(CONFIG.url, autocommit=True))
    return _connection[1]


def close_connection() -> None:
    """Close this process's connection, if it opened one."""
    global _connection
    if _connection is not None and _connection[0] == os.getpid():
        _connection[1].close()
    _connection = None


def create_schema() -> None:
    """In the worker process, before any fork, with a connection closed at once."""
    with contextlib.closing(psycopg.connect(CONFIG.url, autocommit=True)) as schema_connection:
        for statement in SCHEMA:
            schema_connection.execute(statement)


def as_json(row: Any) -> dict[str, Any]:
    account = dict(zip(COLUMNS.split(", "), row, strict=True))
    account["id"] = str(account["id"])
    return account


def open_account(full_name: str, email_address: str) -> dict[str, Any]:
    with connection().transaction():
        row = connection().execute(
            "INSERT INTO accounts (id, full_name, email_address) VALUES (%s, %s, %s) "
            "RETURNING id, full_name, email_address, balance, overdraft_limit, is_closed, version",
            (uuid.uuid4(), full_name, email_address),
        )
        return as_json(row.fetchone())


def get_account(account_id: str) -> dict[str, Any]:
    row = connection().execute(SELECT, (uuid.UUID(account_id),))
    return as_json(row.fetchone())


def deposit(account_id: str, amount: int) -> dict[str, Any]:
    account_uuid = uuid.UUID(account_id)
    job = get_current_job()
    command_id = job.id if job is not None else str(uuid.uuid4())
    with connection().transaction():
        new = connection().execute(
            "INSERT INTO applied_commands (command_id, account_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (command_id, account_uuid),
        )
        if new.rowcount:
            row = connection().execute(DEPOSIT, (amount, account_uuid))
        else:  # run again: the deposit was applied already
            row = connection().execute(SELECT, (account_uuid,))
        return as_json(row.fetchone())
