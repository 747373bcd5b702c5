"""An event-sourced process application: an ``Alert`` for every large withdrawal.

``LargeWithdrawals`` is an ``EventSourcedProjection``: it follows ``BankAccounts``
and, for each withdrawal of at least ``LARGE_WITHDRAWAL_CENTS`` (default
100000: 1,000.00), records a new ``Alert`` aggregate in its own event store.
eventsourcing records the alert's event and the tracking position in one
transaction of the process recorder (``largewithdrawals_events`` and
``largewithdrawals_tracking`` on PostgreSQL), so an alert exists exactly once
per withdrawal, across kills and restarts. An alert's id is derived from the
withdrawal's event, which says which one it is about, and would refuse a
second alert for it even if the tracking did not.

It follows every event (no topic filter), so that its position reaches the
application's last notification; events it ignores are recorded as a position
only.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate, event
from eventsourcing.projection import EventSourcedProjection

from bankaccounts.domain import Account

DEFAULT_LARGE_WITHDRAWAL_CENTS = 100_000


class Alert(Aggregate):
    """A withdrawal someone should look at."""

    @event("Raised")
    def __init__(self, account_id: UUID, amount: int, withdrawal_version: int) -> None:
        self.account_id = account_id
        self.amount = amount
        self.withdrawal_version = withdrawal_version

    @staticmethod
    def create_id(account_id: UUID, withdrawal_version: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"/bankaccounts/alerts/{account_id}/{withdrawal_version}")


class LargeWithdrawals(EventSourcedProjection[UUID]):
    name = "LargeWithdrawals"

    @property
    def threshold(self) -> int:
        return int(self.env.get("LARGE_WITHDRAWAL_CENTS") or DEFAULT_LARGE_WITHDRAWAL_CENTS)

    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        # Account.Withdrawn is made at run time by @event: matched by name (see account_views).
        if not isinstance(domain_event, Account.Event) or type(domain_event).__name__ != "Withdrawn":
            return
        amount = int(getattr(domain_event, "amount", 0))
        if amount >= self.threshold:
            alert = Alert(domain_event.originator_id, amount, domain_event.originator_version)
            processing_event.collect_events(alert)

    def alert_ids(self) -> list[UUID]:
        """Every alert's id, in the order they were raised."""
        ids = []
        start = 1
        while notifications := self.recorder.select_notifications(start=start, limit=500):
            ids += [notification.originator_id for notification in notifications]
            start = notifications[-1].id + 1
        return [UUID(str(alert_id)) for alert_id in ids]

    def alert(self, alert_id: UUID) -> Alert:
        alert: Alert = self.repository.get(alert_id)
        return alert
