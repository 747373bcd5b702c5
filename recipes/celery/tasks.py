"""The tasks, and the Celery app as ``app``: start workers with ``celery -A tasks worker``.

Task names are the function names (``deposit``, not ``tasks.deposit``), so a
client that does not import this module can call them by name with
``app.send_task("deposit", args=[account_id, amount])``. Results are JSON.
Domain errors (unknown account, bad amount, insufficient funds) fail the task
with that exception, which ``AsyncResult.get()`` raises in the client; they
are never retried. A write that finds the store unavailable (down, cut off,
or an SQLite file locked for longer than its lock timeout), or that lost every
race for its account within ``REQUEST_TIMEOUT``, runs again
``STORE_RETRY_COUNTDOWN`` seconds later, at most ``STORE_RETRIES`` times,
with the same task id (``bankaccounts.retry.worth_running_again``).

Commands pass the task id as ``command_id``: a broker delivers a message at
least once, and a message that ran but was not yet acknowledged when its
worker stopped is delivered again. With the task id recorded in the same
transaction as the events, the second delivery changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task

from bankaccounts.domain import Account
from bankaccounts.retry import worth_running_again
from bankaccounts.web import account_json, health_json, parse_account_id
from celery_app import app
from worker_process import application  # and its signal handlers: one application per process

__all__ = ["app", "deposit", "get_account", "health", "open_account", "transfer", "withdraw"]

#: A write that finds the store unavailable, or loses every race for its account,
#: runs again this many seconds later, at most this many times; then it fails (with the error).
STORE_RETRY_COUNTDOWN = 5
STORE_RETRIES = 6


def write(task: Task, command: Callable[[str], Account]) -> dict[str, Any]:
    """Run ``command`` with the task id as its command id; while the store is unavailable
    or the account too busy, send the task again later, with its id: whatever a try
    committed counts once."""
    try:
        return account_json(command(task.request.id))
    except Exception as error:
        if not worth_running_again(error):
            raise
        raise task.retry(exc=error, countdown=STORE_RETRY_COUNTDOWN, max_retries=STORE_RETRIES) from error


@app.task(name="open_account", bind=True)
def open_account(task: Task, full_name: str, email_address: str) -> dict[str, Any]:
    return write(task, lambda command_id: application().open_account(full_name, email_address, command_id=command_id))


@app.task(name="get_account")
def get_account(account_id: str) -> dict[str, Any]:
    return account_json(application().get_account(parse_account_id(account_id)))


@app.task(name="deposit", bind=True)
def deposit(task: Task, account_id: str, amount: int) -> dict[str, Any]:
    account = parse_account_id(account_id)
    return write(task, lambda command_id: application().deposit(account, amount, command_id=command_id))


@app.task(name="withdraw", bind=True)
def withdraw(task: Task, account_id: str, amount: int) -> dict[str, Any]:
    account = parse_account_id(account_id)
    return write(task, lambda command_id: application().withdraw(account, amount, command_id=command_id))


@app.task(name="transfer", bind=True)
def transfer(task: Task, account_id: str, to_account_id: str, amount: int) -> dict[str, Any]:
    source, destination = parse_account_id(account_id), parse_account_id(to_account_id)
    return write(task, lambda command_id: application().transfer(source, destination, amount, command_id=command_id))


@app.task(name="health")
def health() -> dict[str, Any]:
    """Which process ran this task, with which application: ``{"pid", "application", "store"}``."""
    body = health_json(application())
    return {key: body[key] for key in ("pid", "application", "store")}
