"""The jobs: what RQ workers run, called by name (``jobs.deposit``) with JSON arguments and results.

A client that does not import this module enqueues ``"jobs.deposit"`` with
``[account_id, amount]`` (see ``client.py``); a worker started from this
folder imports it by that name. Every job uses the worker process's one
application, ``get_application()``: the worker classes in ``workers.py``
construct it in the process that runs the job, before the job starts.

Commands pass the RQ job id as ``command_id``. A job can run again after it
has changed something: its work horse was killed after the commit but before
RQ recorded success, and the worker ran it again (``HORSE_DEATH_RETRIES``) or
someone requeued it from the failed registry. With
the job id recorded in the same transaction as the events, the second run
changes nothing and returns the account as it is.

Domain errors (unknown account, bad amount, insufficient funds) are raised:
RQ records the job as failed, with the error, in the queue's failed registry.
"""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from bankaccounts.lifecycle import get_application
from bankaccounts.web import account_json, health_json, parse_account_id

__all__ = ["deposit", "get_account", "health", "open_account", "transfer", "withdraw"]


def _command_id() -> str | None:
    # None outside a worker (a job function called directly): then nothing deduplicates it.
    job = get_current_job()
    return job.id if job is not None else None


def open_account(full_name: str, email_address: str) -> dict[str, Any]:
    account = get_application().open_account(full_name, email_address, command_id=_command_id())
    return account_json(account)


def get_account(account_id: str) -> dict[str, Any]:
    return account_json(get_application().get_account(parse_account_id(account_id)))


def deposit(account_id: str, amount: int) -> dict[str, Any]:
    account = get_application().deposit(parse_account_id(account_id), amount, command_id=_command_id())
    return account_json(account)


def withdraw(account_id: str, amount: int) -> dict[str, Any]:
    account = get_application().withdraw(parse_account_id(account_id), amount, command_id=_command_id())
    return account_json(account)


def transfer(account_id: str, to_account_id: str, amount: int) -> dict[str, Any]:
    source, destination = parse_account_id(account_id), parse_account_id(to_account_id)
    account = get_application().transfer(source, destination, amount, command_id=_command_id())
    return account_json(account)


def health() -> dict[str, Any]:
    """Which process ran this job, with which application: ``{"pid", "application", "store"}``."""
    body = health_json(get_application())
    return {key: body[key] for key in ("pid", "application", "store")}
