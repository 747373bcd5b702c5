"""The projection: ``BankAccounts`` events folded into two SQL tables a service would query.

``account_balances`` holds one row per account (its balance); ``daily_totals`` one
row per UTC day (accounts opened, money deposited, withdrawn and transferred, and
how many account events the day had). Each event becomes one ``ViewChange``,
written by the store's view recorder (``postgres_views``, ``sqlite_views``) in
ONE transaction with the projection's tracking position: the rows change if and
only if the position moves past the event. A process killed at any instant has
either committed both or neither, so after its restart it resumes exactly where
its view stands: no event lost, none counted twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection

from bankaccounts.domain import Account


@dataclass(frozen=True)
class ViewChange:
    """What one event changes in the view: added to an account's balance and to its day's totals."""

    account_id: UUID
    day: date
    balance: int = 0
    opened: int = 0
    deposited: int = 0
    withdrawn: int = 0
    transferred: int = 0


@dataclass(frozen=True)
class DailyTotals:
    day: date
    opened: int
    deposited: int
    withdrawn: int
    transferred: int
    events: int


class AccountViewsRecorder(TrackingRecorder, ABC):
    """The view's tables and its tracking position, in one database."""

    @abstractmethod
    def apply(self, change: ViewChange, tracking: Tracking) -> None:
        """Apply ``change`` and record ``tracking``, in one transaction."""

    @abstractmethod
    def balances(self) -> dict[UUID, int]:
        """Every account's balance."""

    @abstractmethod
    def daily_totals(self) -> list[DailyTotals]:
        """Every day's totals, oldest first."""


def view_change(domain_event: Any) -> ViewChange | None:
    """The change an event makes to the view; ``None`` for events the view ignores
    (the application's record of a command id, ``AppliedCommand``)."""
    if not isinstance(domain_event, Account.Event):
        return None
    account_id = domain_event.originator_id
    day = domain_event.timestamp.date()  # eventsourcing's timestamps are in UTC
    amount = int(getattr(domain_event, "amount", 0))
    # The @event decorator makes these classes (Account.Deposited...) at run time,
    # where a type checker cannot see them: matched by name, as they are stored.
    name = type(domain_event).__name__
    if name == "Opened":
        return ViewChange(account_id, day, opened=1)
    if name == "Deposited":
        return ViewChange(account_id, day, balance=amount, deposited=amount)
    if name == "Withdrawn":
        return ViewChange(account_id, day, balance=-amount, withdrawn=amount)
    if name == "TransferSent":
        # Counted once, where it leaves; the receiving side changes the balance only.
        return ViewChange(account_id, day, balance=-amount, transferred=amount)
    if name == "TransferReceived":
        return ViewChange(account_id, day, balance=amount)
    # An overdraft limit, a closing: no amount, but the day's count of events includes it.
    return ViewChange(account_id, day)


class AccountViews(Projection[AccountViewsRecorder]):
    """Follows every event of ``BankAccounts`` (no topic filter), so that its tracking
    position is the application's last notification once it has caught up: an
    event the view ignores still moves the position, in a transaction of its own."""

    name = "AccountViews"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        change = view_change(domain_event)
        if change is None:
            self.view.insert_tracking(tracking)
        else:
            self.view.apply(change, tracking)
