"""The view's tables on SQLite, written with the tracking position in one transaction.

eventsourcing's ``SQLiteTrackingRecorder`` keeps the position in the file's
``tracking`` table (one row per followed application) and refuses a position
that does not move forward (``IntegrityError``, and the transaction, view rows
included, rolls back). That table has no prefix: two projections of the same
application in one SQLite file would share its row, so each needs a file of its
own (on PostgreSQL each has its own table).
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder

from account_views import AccountViewsRecorder, DailyTotals, ViewChange

UPSERT_BALANCE = (
    "INSERT INTO account_balances AS b VALUES (?, ?) "
    "ON CONFLICT (account_id) DO UPDATE SET balance = b.balance + excluded.balance"
)
UPSERT_DAY = (
    "INSERT INTO daily_totals AS d VALUES (?, ?, ?, ?, ?, 1) "
    "ON CONFLICT (day) DO UPDATE SET opened = d.opened + excluded.opened, "
    "deposited = d.deposited + excluded.deposited, withdrawn = d.withdrawn + excluded.withdrawn, "
    "transferred = d.transferred + excluded.transferred, events = d.events + 1"
)


class SQLiteAccountViews(SQLiteTrackingRecorder, AccountViewsRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS account_balances (account_id TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS daily_totals (day TEXT PRIMARY KEY, opened INTEGER NOT NULL, "
            "deposited INTEGER NOT NULL, withdrawn INTEGER NOT NULL, transferred INTEGER NOT NULL, "
            "events INTEGER NOT NULL)",
        ]

    def apply(self, change: ViewChange, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(UPSERT_BALANCE, (change.account_id.hex, change.balance))
            cursor.execute(
                UPSERT_DAY,
                (change.day.isoformat(), change.opened, change.deposited, change.withdrawn, change.transferred),
            )
            self._insert_tracking(cursor, tracking)

    def balances(self) -> dict[UUID, int]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT account_id, balance FROM account_balances")
            return {UUID(row[0]): row[1] for row in cursor.fetchall()}

    def daily_totals(self) -> list[DailyTotals]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT day, opened, deposited, withdrawn, transferred, events FROM daily_totals ORDER BY day"
            )
            return [DailyTotals(date.fromisoformat(row[0]), *row[1:]) for row in cursor.fetchall()]
