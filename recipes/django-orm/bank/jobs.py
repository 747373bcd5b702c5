"""The bank's RQ jobs: what ``python manage.py rqworker`` runs (``bank/rq_workers.py``).

The same work as ``bank/tasks.py``'s Celery tasks, enqueued by name with JSON
arguments. **The job id is the command id**: a job run again (requeued from
the failed registry, run again after its work horse died, or enqueued again
by a request sent again with its ``Idempotency-Key``) changes nothing. A job
that finds the database unavailable fails with the error, into the queue's
failed registry; requeued once the database is back, it applies once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from rq import get_current_job

from bank.accounts import bank_accounts, worker_health
from bank.commands import apply_once
from bank.transactions import run_in_transaction
from bankaccounts.web import account_json

__all__ = ["health", "transfer"]


def transfer(account_id: str, to_account_id: str, amount: int) -> dict[str, Any]:
    """Move ``amount`` between two accounts; return the source account."""
    job = get_current_job()
    if job is None:
        msg = "bank.jobs.transfer runs in an RQ worker: its job id is its command id"
        raise RuntimeError(msg)
    source, destination = UUID(account_id), UUID(to_account_id)

    def command(command_id: str) -> Any:
        return bank_accounts().transfer(source, destination, amount, command_id=command_id)

    return account_json(run_in_transaction(lambda: apply_once(job.id, "transfer", command, source)))


#: Which process ran this job, with which application and database session.
health = worker_health
