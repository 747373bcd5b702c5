"""A command applied once, with its audit row, in the transaction of whoever runs it (a view, a task)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from bank.models import AuditEntry
from bankaccounts.domain import Account


def apply_once(
    command_id: str, action: str, command: Callable[[str], Account], account_id: UUID | None = None
) -> Account:
    """Run ``command`` with ``command_id`` and record its audit row in the caller's
    transaction. Run again with the same id (a request sent again with its
    ``Idempotency-Key``, a task delivered again), it changes nothing and
    returns the account as it is.

    Given the ``account_id`` the command acts on, the row goes in first: saving
    the events takes the events table's lock (their notification ids in commit
    order) until the commit, so whatever the transaction writes after the save,
    every writer of the application waits for. Opening an account learns its id
    from the command."""
    if account_id is not None:
        record_once(command_id, action, account_id)
    account = command(command_id)
    if account_id is None:
        record_once(command_id, action, account.id)
    return account


def record_once(command_id: str, action: str, account_id: UUID) -> None:
    """The audit row of a command, unless it has one: one per command id and action.

    That is a unique constraint's job, not a look first's: two runs of one
    command at once (a task delivered again while it still runs) would both
    look and find no row. The row is inserted with ``ON CONFLICT DO NOTHING``
    (``INSERT OR IGNORE`` on SQLite): one statement, where ``get_or_create``
    would send four (a look, a savepoint, the insert, its release). The later of two
    runs at once waits on the unique index for the first's commit, then adds
    nothing."""
    AuditEntry.objects.bulk_create(
        [AuditEntry(command_id=command_id, action=action, account_id=account_id)], ignore_conflicts=True
    )
