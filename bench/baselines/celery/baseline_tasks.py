"""Baseline for the Celery recipe: the same task names, writing a balance row directly.

Started as ``celery -A baseline_tasks worker`` with the recipe's folder on
``PYTHONPATH``, so that it runs on the recipe's own Celery app and settings
(``celery_app.py``: JSON, late acknowledgement, prefetch of one). A deposit is
one transaction on PostgreSQL through psycopg: record the task id (the same
exactly-once guarantee the recipe gives with its command ids) and, if it was
new, ``UPDATE ... SET balance = balance + amount``. Each process, and each
thread of the threads pool, opens its own connection on first use.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from typing import Any

import psycopg
from celery import Task, signals

from bankaccounts.config import DatabaseConfig
from celery_app import app  # the recipe's app: recipes/celery is on PYTHONPATH

__all__ = ["app", "deposit", "get_account", "open_account"]

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
    msg = "the Celery baseline runs on PostgreSQL only: set DATABASE_URL=postgresql://..."
    raise RuntimeError(msg)

_local = threading.local()


def connection() -> psycopg.Connection[Any]:
    """This thread's connection, opened on first use in this process: never one inherited across a fork."""
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid, _local.connection = os.getpid(), psycopg.connect(CONFIG.url, autocommit=True)
    return _local.connection


@signals.worker_init.connect
def create_schema(**kwargs: Any) -> None:
    """In the main process, before any fork, with a connection closed at once."""
    with contextlib.closing(psycopg.connect(CONFIG.url, autocommit=True)) as schema_connection:
        for statement in SCHEMA:
            schema_connection.execute(statement)


def as_json(row: Any) -> dict[str, Any]:
    account = dict(zip(COLUMNS.split(", "), row, strict=True))
    account["id"] = str(account["id"])
    return account


@app.task(name="open_account")
def open_account(full_name: str, email_address: str) -> dict[str, Any]:
    with connection().transaction():
        row = connection().execute(
            "INSERT INTO accounts (id, full_name, email_address) VALUES (%s, %s, %s) "
            "RETURNING id, full_name, email_address, balance, overdraft_limit, is_closed, version",
            (uuid.uuid4(), full_name, email_address),
        )
        return as_json(row.fetchone())


@app.task(name="get_account")
def get_account(account_id: str) -> dict[str, Any]:
    with connection().transaction():
        row = connection().execute(SELECT, (uuid.UUID(account_id),))
        return as_json(row.fetchone())


@app.task(name="deposit", bind=True)
def deposit(task: Task, account_id: str, amount: int) -> dict[str, Any]:
    account_uuid = uuid.UUID(account_id)
    with connection().transaction():
        new = connection().execute(
            "INSERT INTO applied_commands (command_id, account_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (task.request.id, account_uuid),
        )
        if new.rowcount:
            row = connection().execute(DEPOSIT, (amount, account_uuid))
        else:  # delivered again: the deposit was applied already
            row = connection().execute(SELECT, (account_uuid,))
        return as_json(row.fetchone())
