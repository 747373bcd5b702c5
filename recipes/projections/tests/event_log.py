"""Writing a stream of events fast, and the fold of the event log the view must equal.

The fold here is the test's own, by the events' names, independent of the
recipe's ``account_views.view_change``: the view is checked against it, and its
balances also against the aggregates themselves.
"""

from __future__ import annotations

import threading
import time
from datetime import date
from uuid import UUID

from eventsourcing.persistence import TrackingRecorder

from account_views import AccountViewsRecorder, DailyTotals
from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.domain import Account
from cookbook_testing.processes import wait_for

#: Events one ``write_batch`` records: 2 openings, the deposits, a withdrawal, a transfer's two, an overdraft limit.
FIXED_EVENTS_PER_BATCH = 6


#: A withdrawal ``LargeWithdrawals`` raises an alert for (its default threshold is 100000).
LARGE_WITHDRAWAL = 150_000


def write_batch(application: BankAccounts, deposits: int, *, large_withdrawal: bool = False) -> None:
    """Two new accounts and ``deposits`` + 6 events (+ 2 with a large withdrawal), saved in
    one transaction: a stream written much faster than one event per command, so a test
    can find the projection mid-way."""
    first = Account.open("Ada Lovelace", "ada@example.com")
    second = Account.open("Grace Hopper", "grace@example.com")
    for cents in range(1, deposits + 1):
        first.deposit(cents)
    if large_withdrawal:
        first.deposit(LARGE_WITHDRAWAL)
        first.withdraw(LARGE_WITHDRAWAL)
    first.withdraw(1)
    first.send_transfer(second.id, 2)
    second.receive_transfer(first.id, 2)
    second.set_overdraft_limit(500)
    application.save(first, second)


def last_position(application: BankAccounts) -> int:
    return application.recorder.max_notification_id() or 0


def position(view: TrackingRecorder) -> int:
    return view.max_tracking_id("BankAccounts") or 0


def await_position(view: TrackingRecorder, target: int, timeout: float = 60) -> float:
    """Poll (bounded) until the view's tracking position reaches ``target``; return the seconds it took."""
    started = time.monotonic()
    wait_for(lambda: position(view) >= target, timeout, f"the view to reach position {target}", interval=0.02)
    return time.monotonic() - started


def fold(application: BankAccounts, upto: int | None = None) -> tuple[dict[UUID, int], list[DailyTotals]]:
    """Balances and daily totals from the events up to notification ``upto`` (all by default)."""
    balances: dict[UUID, int] = {}
    days: dict[date, list[int]] = {}  # opened, deposited, withdrawn, transferred, events
    start = 1
    while True:
        notifications = application.recorder.select_notifications(start=start, limit=1000, stop=upto)
        for notification in notifications:
            event = application.mapper.to_domain_event(notification)
            if not isinstance(event, Account.Event):
                continue
            name, amount = type(event).__name__, int(getattr(event, "amount", 0))
            change = {"Deposited": amount, "Withdrawn": -amount, "TransferSent": -amount, "TransferReceived": amount}
            balances[event.originator_id] = balances.get(event.originator_id, 0) + change.get(name, 0)
            totals = days.setdefault(event.timestamp.date(), [0, 0, 0, 0, 0])
            totals[0] += name == "Opened"
            totals[1] += amount if name == "Deposited" else 0
            totals[2] += amount if name == "Withdrawn" else 0
            totals[3] += amount if name == "TransferSent" else 0
            totals[4] += 1
        if len(notifications) < 1000:
            break
        start = notifications[-1].id + 1
    return balances, [DailyTotals(day, *totals) for day, totals in sorted(days.items())]


def check_view_is_the_fold(application: BankAccounts, view: AccountViewsRecorder, upto: int | None = None) -> None:
    balances, daily_totals = fold(application, upto)
    assert view.balances() == balances
    assert view.daily_totals() == daily_totals
    if upto is None:
        # And every balance is the aggregate's own.
        assert balances == {account_id: application.get_account(account_id).balance for account_id in balances}


def account_events(application: BankAccounts) -> int:
    return sum(totals.events for totals in fold(application)[1])


def large_withdrawals(application: BankAccounts) -> list[tuple[UUID, int]]:
    """(account id, version) of every withdrawal of at least ``LARGE_WITHDRAWAL``, from the log."""
    found = []
    start = 1
    while notifications := application.recorder.select_notifications(start=start, limit=1000):
        for notification in notifications:
            event = application.mapper.to_domain_event(notification)
            if type(event).__name__ == "Withdrawn" and int(getattr(event, "amount", 0)) >= LARGE_WITHDRAWAL:
                found.append((event.originator_id, event.originator_version))
        start = notifications[-1].id + 1
    return found


class EventStream:
    """A writer thread with an application of its own (on ``DATABASE_URL``), recording a
    batch of events every 5 ms or so, until stopped (or after ``max_batches``)."""

    def __init__(self, deposits: int = 4, large_every: int = 0, max_batches: int = 3000) -> None:
        self.deposits, self.large_every, self.max_batches = deposits, large_every, max_batches
        self.batches = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._write, name="event-stream")

    def _write(self) -> None:
        with construct_application() as writer:
            while self.batches < self.max_batches and not self._stopping.wait(0.005):
                large = bool(self.large_every) and self.batches % self.large_every == 0
                write_batch(writer, self.deposits, large_withdrawal=large)
                self.batches += 1

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> EventStream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the writer did not stop"

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
