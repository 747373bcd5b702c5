"""The view's tables on PostgreSQL, written with the tracking position in one transaction.

eventsourcing's ``PostgresTrackingRecorder`` keeps one row per followed
application (``accountviews_tracking``: the position) and refuses a position
that does not move forward: its upsert returns no row, and it raises
``IntegrityError``, which rolls back the whole transaction, the view's rows
with it. So an event applied a second time (a process that did not know the
first one committed; a second consumer) changes nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Identifier

from account_views import AccountViewsRecorder, DailyTotals, ViewChange


class PostgresAccountViews(PostgresTrackingRecorder, AccountViewsRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.account_balances (account_id uuid PRIMARY KEY, balance bigint NOT NULL)"
            ).format(schema),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.daily_totals ("
                "day date PRIMARY KEY, opened bigint NOT NULL, deposited bigint NOT NULL, "
                "withdrawn bigint NOT NULL, transferred bigint NOT NULL, events bigint NOT NULL)"
            ).format(schema),
        ]
        self.upsert_balance = SQL(
            "INSERT INTO {0}.account_balances AS b VALUES (%s, %s) "
            "ON CONFLICT (account_id) DO UPDATE SET balance = b.balance + EXCLUDED.balance"
        ).format(schema)
        self.upsert_day = SQL(
            "INSERT INTO {0}.daily_totals AS d VALUES (%s, %s, %s, %s, %s, 1) "
            "ON CONFLICT (day) DO UPDATE SET opened = d.opened + EXCLUDED.opened, "
            "deposited = d.deposited + EXCLUDED.deposited, withdrawn = d.withdrawn + EXCLUDED.withdrawn, "
            "transferred = d.transferred + EXCLUDED.transferred, events = d.events + 1"
        ).format(schema)
        self.select_balances = SQL("SELECT account_id, balance FROM {0}.account_balances").format(schema)
        self.select_days = SQL(
            "SELECT day, opened, deposited, withdrawn, transferred, events FROM {0}.daily_totals ORDER BY day"
        ).format(schema)

    def apply(self, change: ViewChange, tracking: Tracking) -> None:
        # No retry here, unlike eventsourcing's own methods: a failure ends the
        # process (run_projection.py), and its restart resumes from the position.
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.upsert_balance, (change.account_id, change.balance), prepare=True)
            curs.execute(
                self.upsert_day,
                (change.day, change.opened, change.deposited, change.withdrawn, change.transferred),
                prepare=True,
            )
            self._insert_tracking(curs, tracking)

    def balances(self) -> dict[UUID, int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.select_balances)
            return {row["account_id"]: row["balance"] for row in curs.fetchall()}

    def daily_totals(self) -> list[DailyTotals]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.select_days)
            return [DailyTotals(**row) for row in curs.fetchall()]
