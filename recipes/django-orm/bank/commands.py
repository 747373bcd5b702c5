"""A command applied once, with its audit row, in the transaction of whoever runs it (a view, a task)."""

from __future__ import annotations

from collections.abc import Callable

from bank.models import AuditEntry
from bankaccounts.domain import Account


def apply_once(command_id: str, action: str, command: Callable[[str], Account]) -> Account:
    """Run ``command`` with ``command_id`` and record its audit row in the caller's
    transaction. Run again with the same id (a request sent again with its
    ``Idempotency-Key``, a task delivered again), it changes nothing and
    returns the account as it is.

    The row is one per command id and action by a unique constraint, not by a
    look first: two runs of one command at once (a task delivered again while
    it still runs) both find it not yet applied, and the later one's
    ``get_or_create`` waits for the first's commit, then finds its row."""
    account = command(command_id)
    AuditEntry.objects.get_or_create(command_id=command_id, action=action, defaults={"account_id": account.id})
    return account
