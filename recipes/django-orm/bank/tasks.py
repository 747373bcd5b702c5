"""The bank's Celery tasks; ``config/celery_app.py`` finds them here.

A view sends ``transfer`` once its own transaction has committed (see
``views.request_transfer``); a worker runs it, in a transaction of its own:

- **The task id is the command id.** A broker delivers a message at least
  once (a worker stopped before acknowledging it, a child killed mid-task, a
  client that sent it again), so the same task can run twice; its id,
  recorded with its events, makes the second run change nothing.
- **One application per worker process**, by ``bank/accounts.py``'s hooks
  (connected below): each prefork child constructs its own as it starts (the
  solo pool: the worker's own process, where its tasks run); the threads
  pool's, shared by its threads, is constructed by the first task
  (``bank_accounts()``), since that pool sends no per-process signal. The
  prefork parent runs no task and constructs nothing for its children to
  inherit. Each is closed when its process stops.
- **Django's connections**: Celery's Django fixup (installed because
  ``config/celery_app.py`` names the settings first) closes, in each prefork
  child, the connections inherited from the parent without a word to the
  server, and closes every connection before and after each task. The
  application writes through Django's connection, so it needs nothing more.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from celery import Task, shared_task, signals

from bank.accounts import bank_accounts, start_worker_process, stop_worker_process, worker_health
from bank.commands import apply_once
from bank.transactions import run_in_transaction
from bankaccounts.retry import worth_running_again
from bankaccounts.web import account_json

#: A task that finds the database unavailable, or loses every race for its
#: account, runs again this many seconds later, at most this many times; then
#: it fails (with the error).
STORE_RETRY_COUNTDOWN = 5
STORE_RETRIES = 6


@shared_task(bind=True, name="bank.transfer")
def transfer(task: Task, account_id: str, to_account_id: str, amount: int) -> dict[str, Any]:
    """Move ``amount`` between two accounts; return the source account.

    Domain errors (insufficient funds, a closed account) fail the task, which
    ``AsyncResult.get()`` raises in the caller; they are never retried."""
    source, destination = UUID(account_id), UUID(to_account_id)

    def command(command_id: str) -> Any:
        return bank_accounts().transfer(source, destination, amount, command_id=command_id)

    try:
        account = run_in_transaction(lambda: apply_once(task.request.id, "transfer", command, source))
    except Exception as error:
        if not worth_running_again(error):
            raise
        # The same task id again: whatever the first try committed counts once.
        raise task.retry(exc=error, countdown=STORE_RETRY_COUNTDOWN, max_retries=STORE_RETRIES) from error
    return account_json(account)


#: Which process ran this task, with which application and database session.
health = shared_task(name="bank.health")(worker_health)


signals.worker_process_init.connect(start_worker_process)  # a prefork child starts (solo: the worker)
signals.worker_process_shutdown.connect(stop_worker_process)  # a prefork child stops
signals.worker_shutdown.connect(stop_worker_process)  # the worker stops (solo and threads: their application)
