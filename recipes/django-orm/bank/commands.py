"""A command applied once, with its audit row, in the transaction of whoever runs it (a view, a task)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from bank.models import AuditEntry
from bankaccounts.domain import Account


def apply_once(command_id: str, action: str, command: Callable[[str], Account]) -> Account:
    """Run ``command`` with ``command_id`` and record its audit row in the caller's
    transaction. Run again with the same id (a request sent again with its
    ``Idempotency-Key``, a task delivered again), it changes nothing and
    returns the account as it is."""
    account = command(command_id)
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
