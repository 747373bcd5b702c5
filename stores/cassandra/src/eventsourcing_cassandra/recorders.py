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
   ``txid`` and the bucket of the log it begins in. A version taken by
   someone else is a conflict: the rows already written are deleted again
   and ``IntegrityError`` is raised.
2. *Commit.* One conditional batch in the newest bucket of the application's
   log records the decision row ``committed`` for ``txid`` (``IF NOT
   EXISTS``), appends the events to the notification log at ids ``head + 1
   ...`` (``IF head = <the head it read>``) and, for a process application,
   moves the tracking position (``IF tracking_id = <what it read>``). That
   batch is the commit point: the events, their notification ids and the
   tracking position appear together or not at all. If the bucket the
   transaction began in closed meanwhile, it first records there that its
   decision moved to the newest (``IF NOT EXISTS`` too).
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

The log is kept in buckets of ``bucket_size`` ids (``datastore``), so that no
partition grows without bound: a commit goes in the bucket of its first id
(one that runs past the bucket's end closes it), and the first commit after
a closed bucket opens the next one (``IF head = null``), carrying the
tracking positions over.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid1

from cassandra.query import BatchStatement, BatchType, PreparedStatement
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
#: Not a decision: the decision is in bucket ``moved_to`` (a transaction still
#: open when its bucket closed moves there, to commit in the newest).
MOVED = "moved"

#: The statement of a commit batch that records the decision (tests recognise commits by it).
COMMIT_DECISION = (
    "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, status, first_id, count) "
    "VALUES (?, ?, 1, 0, ?, ?, ?, ?) IF NOT EXISTS"
)
#: Where the decisions of transactions begun before the log had buckets are (``migrate`` copies them there).
LEGACY_BUCKET = -1

#: The statements of a commit batch in the log (``{keyspace}`` filled in by the datastore).
LOG_STATEMENTS = {
    "update_head": "UPDATE {keyspace}.log_buckets SET head = ? WHERE application_name = ? AND bucket = ? IF head = ?",
    "open_bucket": (
        "UPDATE {keyspace}.log_buckets SET head = ? WHERE application_name = ? AND bucket = ? IF head = null"
    ),
    "notification": (
        "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, originator_id, "
        "originator_version, topic, state, txid) VALUES (?, ?, 0, ?, '', ?, ?, ?, ?, ?)"
    ),
    "move_tracking": (
        "UPDATE {keyspace}.log_buckets SET tracking_id = ? "
        "WHERE application_name = ? AND bucket = ? AND kind = 2 AND position = 0 AND key = ? "
        "IF tracking_id = ? AND head < ?"
    ),
    "carry_tracking": (
        "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, tracking_id) "
        "VALUES (?, ?, 2, 0, ?, ?)"
    ),
}

#: Fault-injection points, in the order a write passes them (see ``CassandraRecorder.faults``).
FAULT_POINTS = ("after_partition", "before_commit", "after_commit")


#: The longest wait between two tries of a commit that keeps losing the race for the log's head.
BACK_OFF_CAP = 0.02


def back_off_delay(lost: int) -> float:
    """How long to wait after the ``lost``-th lost race: none after the first
    (most races are lost once), then a random time up to 2, 4, 8 ... ms, at most
    ``BACK_OFF_CAP``: writers that all try again at once mostly lose again, and
    each lost try is a Paxos round the replicas must run."""
    if lost < 2:
        return 0.0
    return random.uniform(0, min(BACK_OFF_CAP, 0.001 * 2 ** (lost - 1)))  # noqa: S311 - jitter, not a secret


def back_off(lost: int) -> None:
    delay = back_off_delay(lost)
    if delay:
        time.sleep(delay)


def as_uuid(value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        msg = f"originator ids must be UUIDs on Cassandra, not {value!r}"
        raise persistence.DataError(msg) from None


@dataclass(frozen=True)
class Newest:
    """Where the log stands: the next commit goes in ``bucket``, whose head is
    ``expected`` (None: no commit has opened it yet, and the log's last id,
    ``head``, is in ``previous``)."""

    bucket: int
    expected: int | None
    head: int | None
    previous: int | None


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
        if not partitions:  # a tracking position alone
            assert tracking is not None
            return self._commit(None, None, [], tracking, time.monotonic() + self.datastore.commit_timeout)
        events = list(stored_events) if self.notifies else []
        return self._write_transaction(partitions, events, tracking, time.monotonic() + self.datastore.commit_timeout)

    def _write_transaction(
        self,
        partitions: dict[UUID, list[StoredEvent]],
        events: list[StoredEvent],
        tracking: Tracking | None,
        deadline: float,
    ) -> list[int]:
        """Provisional rows in each partition, then the commit: see the module's docstring."""
        txid = uuid1()
        bucket = self._commit_bucket()
        created_at = datetime.now(UTC)
        written: list[tuple[UUID, list[StoredEvent]]] = []
        try:
            for originator_id, partition_events in partitions.items():
                if not self._insert_partition(originator_id, partition_events, txid, created_at, bucket):
                    msg = (
                        f"a version of {originator_id} in {[e.originator_version for e in partition_events]} "
                        "is already recorded (or being recorded)"
                    )
                    raise persistence.IntegrityError(msg)
                written.append((originator_id, partition_events))
                self._fault("after_partition", txid)
            self._fault("before_commit", txid)
            notification_ids = self._commit(txid, bucket, events, tracking, deadline)
        except persistence.IntegrityError:
            # Not committed, and only this writer could commit it: take the rows back.
            self._delete_rows(txid, written)
            raise
        except Exception:
            # Unknown outcome (say, the cluster went away while committing):
            # decide it now if we can. Rows are deleted only once the decision
            # is ``aborted``: deleting those of a committed transaction would
            # lose half of it. If no decision can be made, readers make it
            # after ``tx_timeout``.
            try:
                decision = self._decide(txid, ABORTED, bucket)
            except persistence.PersistenceError:
                logger.warning("transaction %s is undecided; readers will decide it", txid, exc_info=True)
                raise
            if decision != COMMITTED:
                self._delete_rows(txid, written)
                raise
            notification_ids = self._committed_ids(txid, bucket)
        self._fault("after_commit", txid)
        self._mark_committed(txid, written)
        return notification_ids

    def _insert_partition(
        self,
        originator_id: UUID,
        events: Sequence[StoredEvent],
        txid: UUID | None,
        created_at: datetime,
        bucket: int | None = None,
    ) -> bool:
        """One conditional batch in the aggregate's partition; False if a version was taken."""
        insert = self.datastore.prepare(
            f"INSERT INTO {{keyspace}}.{self.table} (application_name, originator_id, originator_version, "  # noqa: S608 - a checked table name
            "topic, state, txid, log_bucket, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS"
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
                    bucket,
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

    def _commit(
        self,
        txid: UUID | None,
        bucket: int | None,
        events: list[StoredEvent],
        tracking: Tracking | None,
        deadline: float,
    ) -> list[int]:
        """Decide ``committed``; append to the log; move the tracking position: one
        conditional batch in the newest bucket of the log (which must be ``bucket``,
        the one the transaction began in, if it has events to append)."""
        app = self.application_name
        size = self.datastore.bucket_size()
        if not events and tracking is None:
            # Aggregates only (no log): the decision alone, in its bucket.
            assert txid is not None and bucket is not None
            if self._decide(txid, COMMITTED, bucket) != COMMITTED:
                raise self._aborted(txid)
            return []
        # Threads of this process take turns: they would only defeat each other's
        # conditions. Other processes are kept apart by the conditions themselves.
        lock = self.datastore.commit_locks.setdefault(app, threading.Lock())
        with lock:
            newest = self._newest(serial=False)
            position = self._tracking_at(newest, tracking.application_name, serial=False) if tracking else None
            lost = 0
            while True:
                if events and newest.bucket != bucket:
                    # Its bucket closed: where its decision will be moves to the newest.
                    assert txid is not None and bucket is not None
                    found = self._move(txid, bucket, newest.bucket)
                    if found == COMMITTED:  # an attempt that timed out did commit
                        return self._committed_ids(txid, bucket)
                    if found == ABORTED:
                        raise self._aborted(txid)
                    bucket = newest.bucket
                if tracking is not None and position is not None and position >= tracking.notification_id:
                    msg = (
                        f"{app} has already processed notification {tracking.notification_id} "
                        f"of {tracking.application_name} (its position is {position})"
                    )
                    raise persistence.IntegrityError(msg)
                first_id = (newest.head or 0) + 1
                batch = self._commit_batch(newest, txid, first_id, events, tracking, position)
                refusal: LogState | None = None
                with eventsourcing_errors():
                    try:
                        result = self.datastore.execute_raw(batch)
                        if result.was_applied:
                            self.datastore.commit_buckets[app] = newest.bucket
                            return list(range(first_id, first_id + len(events)))
                        if newest.expected is not None:  # (opening a bucket, tracking rows are not conditions)
                            refusal = LogState.of_refusal(result.current_rows, txid, tracking)
                    except Exception as error:
                        if not is_unknown_cas_outcome(error) or txid is None:
                            raise
                # Why not? The refusal says what the conditions found; otherwise
                # serial reads see the latest decided state.
                decision = refusal.decision if refusal is not None else None
                if refusal is None and txid is not None and bucket is not None:
                    decision = self._decision(txid, bucket, serial=True)
                if decision is not None:
                    assert txid is not None and bucket is not None
                    self._remember(txid, decision)
                    if decision == COMMITTED:  # an attempt that timed out did commit
                        return self._committed_ids(txid, bucket)
                    raise self._aborted(txid)
                lost += 1
                back_off(lost)
                if refusal is not None and refusal.head is not None and (refusal.head + 1) // size == newest.bucket:
                    newest = Newest(newest.bucket, expected=refusal.head, head=refusal.head, previous=None)
                    position = refusal.position
                else:  # the bucket closed, or the answer is unknown: read where the log stands
                    newest = self._newest(serial=True)
                    position = self._tracking_at(newest, tracking.application_name, serial=True) if tracking else None
                if time.monotonic() > deadline:
                    msg = f"could not append to the notification log of {app} within {self.datastore.commit_timeout}s"
                    raise NotificationLogBusyError(msg)

    def _commit_batch(
        self,
        newest: Newest,
        txid: UUID | None,
        first_id: int,
        events: list[StoredEvent],
        tracking: Tracking | None,
        position: int | None,
    ) -> BatchStatement:
        """The commit: in ``newest.bucket``, conditional on its head (or on its being
        unopened, when it carries the tracking positions over from the bucket before)."""
        app, bucket = self.application_name, newest.bucket
        size = self.datastore.bucket_size()
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        last_id = first_id + len(events) - 1
        if newest.expected is None:
            # The first commit in this bucket opens it: its head from then on is
            # the log's last id, and the tracking positions move over with it.
            batch.add(self._statement("open_bucket"), (last_id, app, bucket))
            carried = self._tracking_rows(newest.previous) if newest.previous is not None else {}
            if tracking is not None:
                carried[tracking.application_name] = tracking.notification_id
            for upstream, tracking_id in carried.items():
                batch.add(self._statement("carry_tracking"), (app, bucket, upstream, tracking_id))
        else:
            if events:
                batch.add(self._statement("update_head"), (last_id, app, bucket, newest.expected))
            if tracking is not None:
                # While the bucket is open (its head short of its end): the bucket after it
                # copies the positions when it opens, and must find them final.
                batch.add(
                    self._statement("move_tracking"),
                    (
                        tracking.notification_id,
                        app,
                        bucket,
                        tracking.application_name,
                        position,
                        (bucket + 1) * size - 1,
                    ),
                )
        for offset, event in enumerate(events):
            batch.add(
                self._statement("notification"),
                (
                    app,
                    bucket,
                    first_id + offset,
                    as_uuid(event.originator_id),
                    event.originator_version,
                    event.topic,
                    bytes(event.state),
                    txid,
                ),
            )
        if txid is not None:
            batch.add(
                self.datastore.prepare(COMMIT_DECISION), (app, bucket, str(txid), COMMITTED, first_id, len(events))
            )
        return batch

    def _statement(self, name: str) -> PreparedStatement:
        return self.datastore.prepare(LOG_STATEMENTS[name])

    # --- where the log stands -----------------------------------------------------------

    def _commit_bucket(self) -> int:
        """The bucket the next commit goes in, as this process last found it (it may
        have moved on since: the commit finds out, and moves the transaction's decision on)."""
        bucket = self.datastore.commit_buckets.get(self.application_name)
        if bucket is None:
            bucket = self._newest(serial=False).bucket
        return bucket

    def _newest(self, *, serial: bool) -> Newest:
        """Walk from the newest bucket this process knows to the log's newest."""
        app, size = self.application_name, self.datastore.bucket_size()
        bucket = self.datastore.opened_buckets.get(app, 0)
        head = self._bucket_head(bucket, serial=serial)
        if head is None and bucket != 0:  # cannot happen: an opened bucket has a head; start over
            bucket, head = 0, self._bucket_head(0, serial=serial)
        while True:
            following = ((head or 0) + 1) // size
            if head is None or following == bucket:
                newest = Newest(bucket, expected=head, head=head, previous=None)
                break
            self.datastore.closed_heads[(app, bucket)] = head
            following_head = self._bucket_head(following, serial=serial)
            if following_head is None:
                newest = Newest(following, expected=None, head=head, previous=bucket)
                break
            bucket, head = following, following_head
        if newest.expected is not None:
            self.datastore.opened_buckets[app] = newest.bucket
        self.datastore.commit_buckets[app] = newest.bucket
        return newest

    def _bucket_head(self, bucket: int, *, serial: bool) -> int | None:
        rows = self.datastore.execute(
            "SELECT head FROM {keyspace}.log_buckets WHERE application_name = ? AND bucket = ? LIMIT 1",
            (self.application_name, bucket),
            serial=serial,
        ).all()
        return rows[0].head if rows else None

    def _closed_head(self, bucket: int) -> int | None:
        """The head of ``bucket`` (read once it is closed: it never changes again)."""
        key = (self.application_name, bucket)
        if key in self.datastore.closed_heads:
            return self.datastore.closed_heads[key]
        head = self._bucket_head(bucket, serial=False)
        if head is not None and (head + 1) // self.datastore.bucket_size() > bucket:
            self.datastore.closed_heads[key] = head
        return head

    def _tracking_at(self, newest: Newest, upstream: str, *, serial: bool) -> int | None:
        bucket = newest.bucket if newest.expected is not None else newest.previous
        if bucket is None:
            return None
        rows = self.datastore.execute(
            "SELECT tracking_id FROM {keyspace}.log_buckets "
            "WHERE application_name = ? AND bucket = ? AND kind = 2 AND position = 0 AND key = ?",
            (self.application_name, bucket, upstream),
            serial=serial,
        ).all()
        return rows[0].tracking_id if rows else None

    def _tracking_rows(self, bucket: int) -> dict[str, int]:
        """Every tracking position in a closed bucket (serially: all of them final)."""
        rows = self.datastore.execute(
            "SELECT key, tracking_id FROM {keyspace}.log_buckets "
            "WHERE application_name = ? AND bucket = ? AND kind = 2",
            (self.application_name, bucket),
            serial=True,
        )
        return {row.key: row.tracking_id for row in rows if row.tracking_id is not None}

    # --- transaction decisions ---------------------------------------------------------

    def _decision(self, txid: UUID, bucket: int, *, serial: bool = False) -> str | None:
        """The transaction's decision (following it from bucket to bucket where it moved), or None."""
        if txid in self._decisions:
            return self._decisions[txid]
        status = self._decision_row(txid, bucket, serial=serial)[0]
        if status is not None:
            self._remember(txid, status)
        return status

    def _decision_row(self, txid: UUID, bucket: int, *, serial: bool) -> tuple[str | None, int, Any]:
        """The decision, the bucket it is (or will be) in, and its row."""
        while True:
            rows = self.datastore.execute(
                "SELECT status, moved_to, first_id, count FROM {keyspace}.log_buckets "
                "WHERE application_name = ? AND bucket = ? AND kind = 1 AND position = 0 AND key = ?",
                (self.application_name, bucket, str(txid)),
                serial=serial,
            ).all()
            if not rows:
                return None, bucket, None
            if rows[0].status != MOVED:
                return rows[0].status, bucket, rows[0]
            bucket = rows[0].moved_to

    def _aborted(self, txid: UUID) -> persistence.IntegrityError:
        msg = f"transaction {txid} was aborted (it had not committed within {self.datastore.tx_timeout}s)"
        return persistence.IntegrityError(msg)

    def _remember(self, txid: UUID, status: str) -> None:
        if len(self._decisions) > 100_000:
            self._decisions.clear()
        self._decisions[txid] = status

    def _record(self, txid: UUID, bucket: int, status: str, moved_to: int | None = None) -> bool:
        """The decision row ``IF NOT EXISTS``: whether it was recorded (unknown: not)."""
        statement = self.datastore.prepare(
            "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, status, moved_to) "
            "VALUES (?, ?, 1, 0, ?, ?, ?) IF NOT EXISTS"
        )
        params = (self.application_name, bucket, str(txid), status, moved_to)
        with eventsourcing_errors():
            try:
                return bool(self.datastore.execute_raw(statement, params).was_applied)
            except Exception as error:
                if not is_unknown_cas_outcome(error):
                    raise
                return False

    def _decide(self, txid: UUID, status: str, bucket: int) -> str:
        """Record ``status`` for ``txid`` unless it is already decided; return the decision."""
        while True:  # from bucket to bucket where it moved (its writer may move it on meanwhile)
            if self._record(txid, bucket, status):
                self._remember(txid, status)
                return status
            decided, at, _row = self._decision_row(txid, bucket, serial=True)
            if decided is not None:
                self._remember(txid, decided)
                return decided
            if at == bucket:
                break  # no row, yet not recorded: the outcome stays unknown
            bucket = at
        msg = f"could not decide transaction {txid}"
        raise persistence.OperationalError(msg)

    def _move(self, txid: UUID, bucket: int, to: int) -> str | None:
        """Move where the transaction's decision will be, from ``bucket`` (closed) to
        ``to``, by the same ``IF NOT EXISTS`` as a decision: so a reader aborting it
        meanwhile either comes first (the move is refused) or follows it there.
        Returns the decision if there already is one."""
        for _ in range(2):  # once more if the first answer was lost and the serial read foreclosed it
            if self._record(txid, bucket, MOVED, to):
                return None
            decided, at, _row = self._decision_row(txid, bucket, serial=True)
            if decided is not None or at == to:  # decided, or moved by an attempt whose answer was lost
                return decided
        msg = f"could not move transaction {txid} to bucket {to}"
        raise persistence.OperationalError(msg)

    def _committed_ids(self, txid: UUID, bucket: int) -> list[int]:
        _status, _at, row = self._decision_row(txid, bucket, serial=True)
        if row is None or row.first_id is None:
            return []
        return list(range(row.first_id, row.first_id + (row.count or 0)))

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
            "SELECT originator_version, topic, state, txid, log_bucket, committed, created_at "  # noqa: S608 - a checked table name
            f"FROM {{keyspace}}.{self.table} "
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
        bucket: int = row.log_bucket if row.log_bucket is not None else LEGACY_BUCKET
        decision = self._decision(txid, bucket)
        if decision is None:
            age = (datetime.now(UTC) - row.created_at.replace(tzinfo=UTC)).total_seconds()
            if age < self.datastore.tx_timeout:
                return False  # in flight (or its writer died less than tx_timeout ago)
            decision = self._decide(txid, ABORTED, bucket)
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
        """Bucket by bucket from the one holding ``start``; the ids run on without a
        gap from one bucket to the next, so a gap is a commit not yet visible here:
        what comes before it is returned, the rest on the next call."""
        first = max(1, 1 if start is None else start if inclusive_of_start else start + 1)
        if limit <= 0 or (stop is not None and stop < first):
            return []
        size = self.datastore.bucket_size()
        bucket = self._bucket_holding(first)
        if bucket is None:
            return []
        wanted = set(topics)
        notifications: list[Notification] = []
        expected: int | None = None
        while True:
            following: int | None = None  # the id after the last one this bucket gave
            wants = None if topics else limit - len(notifications)
            for row in self._notification_rows(bucket, expected or first, stop, wants):
                if expected is not None and row.position != expected:
                    return notifications
                expected = following = row.position + 1
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
                    return notifications
            # Go on to the next bucket only if this one is closed: its ids ran up to its end.
            if following is None or following // size == bucket or (stop is not None and following > stop):
                return notifications
            bucket = following // size

    def _bucket_holding(self, position: int) -> int | None:
        """The bucket that holds ``position``: of those at or before its range, the
        first whose head reaches it (a commit's ids are all in the bucket of its first,
        so a commit that runs past its bucket's end can hold ids of the ranges after).
        None if the log does not reach ``position``."""
        top = position // self.datastore.bucket_size()
        heads = {top: self._closed_head(top)}  # read once: at the log's end, the bucket a poll reads
        if heads[top] is None:  # beyond the log, or passed over: start from its newest
            newest = self._newest(serial=False)
            opened = newest.bucket if newest.expected is not None else newest.previous
            if opened is None or (newest.head or 0) < position:
                return None
            top = min(top, opened)
        holding = None
        for bucket in range(top, -1, -1):
            head = heads[bucket] if bucket in heads else self._closed_head(bucket)
            if head is None:
                continue  # not opened: passed over by a commit that ran past several ends
            if head < position:
                break
            holding = bucket
        return holding

    def _notification_rows(self, bucket: int, first: int, stop: int | None, limit: int | None) -> Any:
        cql = (
            "SELECT position, originator_id, originator_version, topic, state FROM {keyspace}.log_buckets "
            "WHERE application_name = ? AND bucket = ? AND kind = 0 AND position >= ?"
        )
        params: list[Any] = [self.application_name, bucket, first]
        if stop is not None:
            cql += " AND position <= ?"
            params.append(stop)
        if limit is not None:
            cql += " LIMIT ?"
            params.append(limit)
        bound = self.datastore.prepare(cql).bind(params)
        bound.fetch_size = max(1, min(limit, 1000)) if limit is not None else 1000
        with eventsourcing_errors():
            return self.datastore.session().execute(bound, timeout=self.datastore.request_timeout)

    def max_notification_id(self) -> int | None:
        return self._newest(serial=False).head or None

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
        self._log()._commit(None, None, [], tracking, time.monotonic() + self.datastore.commit_timeout)

    def max_tracking_id(self, application_name: str) -> int | None:
        log = self._log()
        return log._tracking_at(log._newest(serial=False), application_name, serial=False)

    def _log(self) -> CassandraAggregateRecorder:
        """The application's log, which keeps the positions (a process recorder is its own)."""
        if isinstance(self, CassandraAggregateRecorder):
            return self
        return CassandraAggregateRecorder(self.datastore, self.application_name)


class CassandraProcessRecorder(CassandraTrackingRecorder, CassandraApplicationRecorder, ProcessRecorder):
    """Events, their notifications and the tracking position that caused them, committed together."""

    def __init__(self, datastore: CassandraDatastore, application_name: str) -> None:
        CassandraApplicationRecorder.__init__(self, datastore, application_name)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._write(stored_events, kwargs.get("tracking"))
