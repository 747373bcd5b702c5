"""``eventsourcing``'s recorder interfaces on Cassandra.

Events of one aggregate live in one partition, clustered by version. A save
whose events all belong to one aggregate, and that feeds no notification log
(snapshots), is one conditional batch in that partition (``IF NOT EXISTS`` on
every row): all of its events land or none do, and a lost race is an
``IntegrityError``.

Every other save is a small transaction over several partitions (see
``docs`` in the package README):

1. *Provisional rows.* For each aggregate it touches, one conditional batch
   inserts its rows ``IF NOT EXISTS``, tagged with the transaction id
   ``txid``. A version taken by someone else is a conflict: the rows already
   written are deleted again and ``IntegrityError`` is raised.
2. *Commit.* One conditional batch in the application's log partition
   records the decision row ``committed`` for ``txid`` (``IF NOT EXISTS``),
   appends the events to the notification log at ids ``head + 1 ...``
   (``IF head = <the head it read>``) and, for a process application, moves
   the tracking position (``IF tracking_id = <what it read>``). That batch
   is the commit point: the events, their notification ids and the tracking
   position appear together or not at all.
3. *Clean-up.* The rows are marked ``committed`` (a cache: readers that find
   an unmarked row look its transaction up).

A row whose transaction has no decision yet is invisible to readers. Once it
is older than ``tx_timeout``, any reader may decide ``aborted`` for it (the
same ``IF NOT EXISTS`` on the decision row, so exactly one of commit and
abort wins) and delete its rows; a writer that comes back after that finds
its commit refused and raises ``IntegrityError``, so the application
re-runs the command. Timing only decides *when* a stuck transaction is
cleared, never *whether* it committed.

So a transfer between two accounts (two partitions, plus the record of the
command) commits as a whole or not at all, whatever process dies at whichever
step, and the notification log holds exactly the committed events, in one
total order with contiguous ids.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid1

from cassandra.query import BatchStatement, BatchType
from eventsourcing import persistence
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from eventsourcing_cassandra.datastore import CassandraDatastore, eventsourcing_errors, is_unknown_cas_outcome

logger = logging.getLogger(__name__)

KIND_NOTIFICATION, KIND_DECISION, KIND_TRACKING = 0, 1, 2
COMMITTED, ABORTED = "committed", "aborted"

#: The statement of a commit batch that records the decision (tests recognise commits by it).
COMMIT_DECISION = (
    "INSERT INTO {keyspace}.application_log (application_name, kind, position, key, status, first_id, count) "
    "VALUES (?, 1, 0, ?, ?, ?, ?) IF NOT EXISTS"
)

#: Fault-injection points, in the order a write passes them (see ``CassandraRecorder.faults``).
FAULT_POINTS = ("after_partition", "before_commit", "after_commit")


def as_uuid(value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        msg = f"originator ids must be UUIDs on Cassandra, not {value!r}"
        raise persistence.DataError(msg) from None


class NotificationLogBusyError(persistence.OperationalError):
    """A commit kept losing the race for the head of the application's notification
    log until ``commit_timeout`` ran out. It did not commit: its transaction has no
    decision, and a reader aborts it once it is ``tx_timeout`` old."""


@dataclass(frozen=True)
class LogState:
    """What a commit's conditions depend on: the log's head, the transaction's
    decision, and the tracking position it moves (None where there is none)."""

    head: int | None
    decision: str | None
    position: int | None

    @classmethod
    def of_refusal(cls, rows: Sequence[Any], txid: UUID | None, tracking: Tracking | None) -> LogState:
        """Read from a refused conditional batch: Cassandra answers ``[applied] = false``
        with the rows its conditions read, read in the same Paxos round (so as a serial
        read would have seen them): each with the partition's static ``head``, and
        none for a row that does not exist (a partition with no rows: no columns).
        Taking them from the refusal saves the two serial reads that would otherwise
        follow each lost race for the log's head."""
        head = decision = position = None
        for row in rows:
            head = getattr(row, "head", None)
            kind, key = getattr(row, "kind", None), getattr(row, "key", None)
            if kind == KIND_DECISION and txid is not None and key == str(txid):
                decision = row.status
            elif kind == KIND_TRACKING and tracking is not None and key == tracking.application_name:
                position = row.tracking_id
        return cls(head=head, decision=decision, position=position)


class CassandraRecorder:
    """Common state: the datastore, the application's name, and a fault-injection hook."""

    def __init__(self, datastore: CassandraDatastore, application_name: str) -> None:
        self.datastore = datastore
        self.application_name = application_name
        #: Tests set this to a callable, called with a point of ``FAULT_POINTS``
        #: and the transaction id, to simulate a crash or a stall right there.
        self.faults: Callable[[str, UUID], None] | None = None

    def _fault(self, point: str, txid: UUID) -> None:
        if self.faults is not None:
            self.faults(point, txid)

    def create_table(self) -> None:
        self.datastore.create_tables()


class CassandraAggregateRecorder(CassandraRecorder, AggregateRecorder):
    """Events (or snapshots) of aggregates: one partition per aggregate."""

    #: Whether committed events are also appended to the application's notification log.
    notifies = False

    def __init__(self, datastore: CassandraDatastore, application_name: str, table: str = "events") -> None:
        super().__init__(datastore, application_name)
        if not table.replace("_", "").isalnum():
            msg = f"invalid table name {table!r}"
            raise persistence.ProgrammingError(msg)
        self.table = table
        self._decisions: dict[UUID, str] = {}  # final decisions seen: never change, so cache them

    # --- writing -----------------------------------------------------------------

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._write(stored_events, None)
        return None

    def _write(self, stored_events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        """Record the events (and the tracking position) atomically; return notification ids."""
        partitions: dict[UUID, list[StoredEvent]] = {}
        seen: set[tuple[UUID, int]] = set()
        for event in stored_events:
            originator_id = as_uuid(event.originator_id)
            if (originator_id, event.originator_version) in seen:
                msg = f"version {event.originator_version} of {originator_id} appears twice in one save"
                raise persistence.IntegrityError(msg)
            seen.add((originator_id, event.originator_version))
            partitions.setdefault(originator_id, []).append(event)
        if not partitions and tracking is None:
            return []
        if len(partitions) == 1 and not self.notifies and tracking is None:
            # One aggregate and no log: its own conditional batch is atomic already.
            ((originator_id, events),) = partitions.items()
            if not self._insert_partition(originator_id, events, None, datetime.now(UTC)):
                msg = f"a version of {originator_id} in {[e.originator_version for e in events]} is already recorded"
                raise persistence.IntegrityError(msg)
            return []
        txid = uuid1() if partitions else None
        created_at = datetime.now(UTC)
        written: list[tuple[UUID, list[StoredEvent]]] = []
        try:
            for originator_id, events in partitions.items():
                assert txid is not None
                if not self._insert_partition(originator_id, events, txid, created_at):
                    msg = (
                        f"a version of {originator_id} in {[e.originator_version for e in events]} "
                        "is already recorded (or being recorded)"
                    )
                    raise persistence.IntegrityError(msg)
                written.append((originator_id, events))
                self._fault("after_partition", txid)
            if txid is not None:
                self._fault("before_commit", txid)
            notification_ids = self._commit(txid, list(stored_events) if self.notifies else [], tracking)
        except persistence.IntegrityError:
            # Not committed, and only this writer could commit it: take the rows back.
            if txid is not None:
                self._delete_rows(txid, written)
            raise
        except Exception:
            # Unknown outcome (say, the cluster went away while committing):
            # decide it now if we can. Rows are deleted only once the decision
            # is ``aborted``: deleting those of a committed transaction would
            # lose half of it. If no decision can be made, readers make it
            # after ``tx_timeout``.
            if txid is None:
                raise
            try:
                decision = self._decide(txid, ABORTED)
            except persistence.PersistenceError:
                logger.warning("transaction %s is undecided; readers will decide it", txid, exc_info=True)
                raise
            if decision != COMMITTED:
                self._delete_rows(txid, written)
                raise
            notification_ids = self._committed_ids(txid)
        if txid is not None:
            self._fault("after_commit", txid)
            self._mark_committed(txid, written)
        return notification_ids

    def _insert_partition(
        self, originator_id: UUID, events: Sequence[StoredEvent], txid: UUID | None, created_at: datetime
    ) -> bool:
        """One conditional batch in the aggregate's partition; False if a version was taken."""
        insert = self.datastore.prepare(
            f"INSERT INTO {{keyspace}}.{self.table} (application_name, originator_id, originator_version, "  # noqa: S608 - a checked table name
            "topic, state, txid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
        )
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for event in events:
            batch.add(
                insert,
                (
                    self.application_name,
                    originator_id,
                    event.originator_version,
                    event.topic,
                    bytes(event.state),
                    txid,
                    created_at,
                ),
            )
        with eventsourcing_errors():
            try:
                return bool(self.datastore.execute_raw(batch).was_applied)
            except Exception as error:
                if not is_unknown_cas_outcome(error):
                    raise
        # A serial read completes or forecloses any unfinished proposal.
        return self._rows_are_ours(originator_id, events, txid)

    def _rows_are_ours(self, originator_id: UUID, events: Sequence[StoredEvent], txid: UUID | None) -> bool:
        versions = [event.originator_version for event in events]
        rows = self.datastore.execute(
            f"SELECT originator_version, txid, topic, state FROM {{keyspace}}.{self.table} "  # noqa: S608 - a checked table name
            "WHERE application_name = ? AND originator_id = ? AND originator_version IN ?",
            (self.application_name, originator_id, versions),
            serial=True,
        )
        found = {row.originator_version: row for row in rows}
        return all(
            version in found
            and found[version].txid == txid
            and (txid is not None or (found[version].topic, bytes(found[version].state)) == (e.topic, bytes(e.state)))
            for version, e in zip(versions, events, strict=True)
        )

    def _commit(self, txid: UUID | None, events: list[StoredEvent], tracking: Tracking | None) -> list[int]:
        """Decide ``committed``; append to the log; move the tracking position: one conditional batch."""
        if txid is None and tracking is None:
            return []
        app = self.application_name
        update_head = self.datastore.prepare(
            "UPDATE {keyspace}.application_log SET head = ? WHERE application_name = ? IF head = ?"
        )
        insert_notification = self.datastore.prepare(
            "INSERT INTO {keyspace}.application_log (application_name, kind, position, key, originator_id, "
            "originator_version, topic, state, txid) VALUES (?, 0, ?, '', ?, ?, ?, ?, ?)"
        )
        insert_decision = self.datastore.prepare(COMMIT_DECISION)
        insert_tracking = self.datastore.prepare(
            "INSERT INTO {keyspace}.application_log (application_name, kind, position, key, tracking_id) "
            "VALUES (?, 2, 0, ?, ?) IF NOT EXISTS"
        )
        update_tracking = self.datastore.prepare(
            "UPDATE {keyspace}.application_log SET tracking_id = ? "
            "WHERE application_name = ? AND kind = 2 AND position = 0 AND key = ? IF tracking_id = ?"
        )
        # Threads of this process take turns: they would only defeat each other's
        # conditions. Other processes are kept apart by the conditions themselves.
        lock = self.datastore.commit_locks.setdefault(app, threading.Lock())
        deadline = time.monotonic() + self.datastore.commit_timeout
        with lock:
            head = self._head(serial=False) if events else None
            position = self._tracking_position(tracking.application_name, serial=False) if tracking else None
            while True:
                if tracking is not None and position is not None and position >= tracking.notification_id:
                    msg = (
                        f"{app} has already processed notification {tracking.notification_id} "
                        f"of {tracking.application_name} (its position is {position})"
                    )
                    raise persistence.IntegrityError(msg)
                first_id = (head or 0) + 1
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                if events:
                    batch.add(update_head, (first_id + len(events) - 1, app, head))
                    for offset, event in enumerate(events):
                        batch.add(
                            insert_notification,
                            (
                                app,
                                first_id + offset,
                                as_uuid(event.originator_id),
                                event.originator_version,
                                event.topic,
                                bytes(event.state),
                                txid,
                            ),
                        )
                if txid is not None:
                    batch.add(insert_decision, (app, str(txid), COMMITTED, first_id, len(events)))
                if tracking is not None:
                    if position is None:
                        batch.add(insert_tracking, (app, tracking.application_name, tracking.notification_id))
                    else:
                        batch.add(update_tracking, (tracking.notification_id, app, tracking.application_name, position))
                refusal: LogState | None = None
                with eventsourcing_errors():
                    try:
                        result = self.datastore.execute_raw(batch)
                        if result.was_applied:
                            return list(range(first_id, first_id + len(events)))
                        refusal = LogState.of_refusal(result.current_rows, txid, tracking)
                    except Exception as error:
                        if not is_unknown_cas_outcome(error) or txid is None:
                            raise
                # Why not? The refusal says what the conditions found; after an
                # unknown outcome, serial reads see the latest decided state.
                state = refusal if refusal is not None else self._log_state(txid, tracking, head=bool(events))
                if state.decision is not None:
                    assert txid is not None
                    self._remember(txid, state.decision)
                if state.decision == COMMITTED:  # an attempt that timed out did commit
                    assert txid is not None
                    return self._committed_ids(txid)
                if state.decision == ABORTED:
                    msg = f"transaction {txid} was aborted (it had not committed within {self.datastore.tx_timeout}s)"
                    raise persistence.IntegrityError(msg)
                head, position = state.head, state.position
                if time.monotonic() > deadline:
                    msg = f"could not append to the notification log of {app} within {self.datastore.commit_timeout}s"
                    raise NotificationLogBusyError(msg)

    def _log_state(self, txid: UUID | None, tracking: Tracking | None, *, head: bool) -> LogState:
        """Serial reads of what a commit's conditions depend on."""
        return LogState(
            head=self._head(serial=True) if head else None,
            decision=self._decision(txid, serial=True) if txid is not None else None,
            position=self._tracking_position(tracking.application_name, serial=True) if tracking else None,
        )

    def _head(self, *, serial: bool) -> int | None:
        rows = self.datastore.execute(
            "SELECT head FROM {keyspace}.application_log WHERE application_name = ? LIMIT 1",
            (self.application_name,),
            serial=serial,
        ).all()
        return rows[0].head if rows else None

    def _tracking_position(self, upstream: str, *, serial: bool) -> int | None:
        rows = self.datastore.execute(
            "SELECT tracking_id FROM {keyspace}.application_log "
            "WHERE application_name = ? AND kind = 2 AND position = 0 AND key = ?",
            (self.application_name, upstream),
            serial=serial,
        ).all()
        return rows[0].tracking_id if rows else None

    # --- transaction decisions ---------------------------------------------------------

    def _decision(self, txid: UUID, *, serial: bool = False) -> str | None:
        if txid in self._decisions:
            return self._decisions[txid]
        rows = self.datastore.execute(
            "SELECT status FROM {keyspace}.application_log "
            "WHERE application_name = ? AND kind = 1 AND position = 0 AND key = ?",
            (self.application_name, str(txid)),
            serial=serial,
        ).all()
        status = rows[0].status if rows else None
        if status is not None:
            self._remember(txid, status)
        return status

    def _remember(self, txid: UUID, status: str) -> None:
        if len(self._decisions) > 100_000:
            self._decisions.clear()
        self._decisions[txid] = status

    def _decide(self, txid: UUID, status: str) -> str:
        """Record ``status`` for ``txid`` unless it is already decided; return the decision."""
        statement = self.datastore.prepare(
            "INSERT INTO {keyspace}.application_log (application_name, kind, position, key, status) "
            "VALUES (?, 1, 0, ?, ?) IF NOT EXISTS"
        )
        with eventsourcing_errors():
            try:
                applied = bool(
                    self.datastore.execute_raw(statement, (self.application_name, str(txid), status)).was_applied
                )
            except Exception as error:
                if not is_unknown_cas_outcome(error):
                    raise
                applied = False
        decided = status if applied else self._decision(txid, serial=True)
        if decided is None:
            msg = f"could not decide transaction {txid}"
            raise persistence.OperationalError(msg)
        self._remember(txid, decided)
        return decided

    def _committed_ids(self, txid: UUID) -> list[int]:
        rows = self.datastore.execute(
            "SELECT first_id, count FROM {keyspace}.application_log "
            "WHERE application_name = ? AND kind = 1 AND position = 0 AND key = ?",
            (self.application_name, str(txid)),
            serial=True,
        ).all()
        if not rows or rows[0].first_id is None:
            return []
        return list(range(rows[0].first_id, rows[0].first_id + (rows[0].count or 0)))

    def _mark_committed(self, txid: UUID, written: Sequence[tuple[UUID, Sequence[StoredEvent]]]) -> None:
        """Best effort: readers look the transaction up when a row is not marked."""
        statement = self.datastore.prepare(
            f"UPDATE {{keyspace}}.{self.table} SET committed = true "  # noqa: S608 - a checked table name
            "WHERE application_name = ? AND originator_id = ? AND originator_version = ?"
        )
        try:
            for originator_id, events in written:
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for event in events:
                    batch.add(statement, (self.application_name, originator_id, event.originator_version))
                self.datastore.execute(batch)
        except persistence.PersistenceError:
            logger.warning("could not mark the rows of committed transaction %s", txid, exc_info=True)

    def _delete_rows(self, txid: UUID, written: Sequence[tuple[UUID, Sequence[StoredEvent]]]) -> None:
        """Best effort: delete the rows of an uncommitted transaction (readers finish it otherwise)."""
        try:
            for originator_id, events in written:
                self._delete_versions(txid, originator_id, [event.originator_version for event in events])
        except persistence.PersistenceError:
            logger.warning("could not delete the rows of aborted transaction %s", txid, exc_info=True)

    def _delete_versions(self, txid: UUID, originator_id: UUID, versions: Sequence[int]) -> None:
        # One condition per row: a row already deleted (by a reader) must not stop the others.
        statement = self.datastore.prepare(
            f"DELETE FROM {{keyspace}}.{self.table} "  # noqa: S608 - a checked table name
            "WHERE application_name = ? AND originator_id = ? AND originator_version = ? IF txid = ?"
        )
        for version in versions:
            self.datastore.execute(statement, (self.application_name, originator_id, version, txid))

    # --- reading -----------------------------------------------------------------------

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        originator_id = as_uuid(originator_id)
        cql = (
            f"SELECT originator_version, topic, state, txid, committed, created_at FROM {{keyspace}}.{self.table} "  # noqa: S608 - a checked table name
            "WHERE application_name = ? AND originator_id = ?"
        )
        params: list[Any] = [self.application_name, originator_id]
        if gt is not None:
            cql += " AND originator_version > ?"
            params.append(gt)
        if lte is not None:
            cql += " AND originator_version <= ?"
            params.append(lte)
        if desc:
            cql += " ORDER BY originator_version DESC"
        events: list[StoredEvent] = []
        statement = self.datastore.prepare(cql)
        statement_bound = statement.bind(params)
        statement_bound.fetch_size = max(100, limit or 0)
        with eventsourcing_errors():
            rows = self.datastore.session().execute(statement_bound, timeout=self.datastore.request_timeout)
            for row in rows:
                if not self._is_visible(originator_id, row):
                    if desc:
                        continue  # the newest rows come first, and the older ones are settled
                    # Rows come in pages, each read at its own moment: a row still in
                    # flight on one page, then on a later page a row committed after it
                    # was, would leave a gap in the history (OriginatorVersionError on
                    # replay). In any one moment, nothing visible follows a row that is
                    # not: stop here, with the history as it was when this page was read.
                    break
                events.append(
                    StoredEvent(
                        originator_id=originator_id,
                        originator_version=row.originator_version,
                        topic=row.topic,
                        state=bytes(row.state),
                    )
                )
                if limit is not None and len(events) >= limit:
                    break
        return events

    def _is_visible(self, originator_id: UUID, row: Any) -> bool:
        """Whether a row counts: written alone, or by a committed transaction."""
        if row.txid is None or row.committed:
            return True
        txid: UUID = row.txid
        decision = self._decision(txid)
        if decision is None:
            age = (datetime.now(UTC) - row.created_at.replace(tzinfo=UTC)).total_seconds()
            if age < self.datastore.tx_timeout:
                return False  # in flight (or its writer died less than tx_timeout ago)
            decision = self._decide(txid, ABORTED)
        if decision == COMMITTED:
            with contextlib.suppress(persistence.PersistenceError):
                self.datastore.execute(
                    f"UPDATE {{keyspace}}.{self.table} SET committed = true "  # noqa: S608 - a checked table name
                    "WHERE application_name = ? AND originator_id = ? AND originator_version = ?",
                    (self.application_name, originator_id, row.originator_version),
                )
            return True
        with contextlib.suppress(persistence.PersistenceError):
            self._delete_versions(txid, originator_id, [row.originator_version])
        return False


class CassandraApplicationRecorder(CassandraAggregateRecorder, ApplicationRecorder):
    """Events of aggregates, and the application's notification log over them."""

    notifies = True

    def __init__(self, datastore: CassandraDatastore, application_name: str) -> None:
        super().__init__(datastore, application_name, table="events")

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._write(stored_events, None)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        cql = (
            "SELECT position, originator_id, originator_version, topic, state FROM {keyspace}.application_log "
            "WHERE application_name = ? AND kind = 0"
        )
        params: list[Any] = [self.application_name]
        if start is not None:
            cql += " AND position >= ?" if inclusive_of_start else " AND position > ?"
            params.append(start)
        if stop is not None:
            cql += " AND position <= ?"
            params.append(stop)
        if not topics:
            cql += " LIMIT ?"
            params.append(limit)
        bound = self.datastore.prepare(cql).bind(params)
        bound.fetch_size = max(1, min(limit, 1000)) if not topics else 1000
        wanted = set(topics)
        notifications: list[Notification] = []
        if limit <= 0:
            return notifications
        with eventsourcing_errors():
            for row in self.datastore.session().execute(bound, timeout=self.datastore.request_timeout):
                if wanted and row.topic not in wanted:
                    continue
                notifications.append(
                    Notification(
                        id=row.position,
                        originator_id=row.originator_id,
                        originator_version=row.originator_version,
                        topic=row.topic,
                        state=bytes(row.state),
                    )
                )
                if len(notifications) >= limit:
                    break
        return notifications

    def max_notification_id(self) -> int | None:
        return self._head(serial=False)

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(self, gt=gt, topics=topics)


class PollingSubscription(Subscription[CassandraApplicationRecorder]):
    """Follows the notification log by asking for newer notifications every ``poll_interval`` s.

    Cassandra has no LISTEN/NOTIFY; the log has contiguous ids and only ever
    grows at its head, so polling from the last id seen misses nothing.
    """

    poll_interval = 0.1
    batch_size = 500

    def __init__(
        self, recorder: CassandraApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        super().__init__(recorder, gt=gt, topics=topics)
        self._received: deque[Notification] = deque()
        self._wake_up = threading.Event()

    def stop(self) -> None:
        super().stop()
        self._wake_up.set()

    def __next__(self) -> Notification:
        while not self._has_been_stopped:
            if self._received:
                notification = self._received.popleft()
                self._last_notification_id = notification.id
                return notification
            self._received.extend(
                self._recorder.select_notifications(
                    start=self._last_notification_id or 0,
                    limit=self.batch_size,
                    topics=self._topics,
                    inclusive_of_start=False,
                )
            )
            if not self._received:
                self._wake_up.wait(self.poll_interval)
        raise StopIteration


class CassandraTrackingRecorder(CassandraRecorder, TrackingRecorder):
    """How far this application has processed each upstream application's log.

    Positions are rows of the application's log partition, so that a process
    recorder can move one in the same conditional batch as it commits events.
    """

    def insert_tracking(self, tracking: Tracking) -> None:
        recorder = CassandraAggregateRecorder(self.datastore, self.application_name)
        recorder._commit(None, [], tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        rows = self.datastore.execute(
            "SELECT tracking_id FROM {keyspace}.application_log "
            "WHERE application_name = ? AND kind = 2 AND position = 0 AND key = ?",
            (self.application_name, application_name),
        ).all()
        return rows[0].tracking_id if rows else None


class CassandraProcessRecorder(CassandraTrackingRecorder, CassandraApplicationRecorder, ProcessRecorder):
    """Events, their notifications and the tracking position that caused them, committed together."""

    def __init__(self, datastore: CassandraDatastore, application_name: str) -> None:
        CassandraApplicationRecorder.__init__(self, datastore, application_name)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._write(stored_events, kwargs.get("tracking"))

    def insert_tracking(self, tracking: Tracking) -> None:
        self._commit(None, [], tracking)
