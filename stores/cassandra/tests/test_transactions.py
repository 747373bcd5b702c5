"""Saves that span partitions: all or nothing, whatever fails between the writes.

A save of events of several aggregates (a transfer: two accounts and the
record of the command) writes provisional rows partition by partition, then
commits in one conditional batch in the application's log partition (see
``eventsourcing_cassandra.recorders``). These tests stop the writer at each
point in between, as a crash would (an exception that no clean-up code sees),
or stall it past the transaction timeout, and check what every reader sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from cassandra import WriteTimeout
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import Environment

from bankaccounts.web import store_unavailable
from eventsourcing_cassandra.factory import CassandraFactory
from eventsourcing_cassandra.recorders import (
    BACK_OFF_CAP,
    COMMIT_DECISION,
    CassandraApplicationRecorder,
    NotificationLogBusyError,
    back_off_delay,
)

TX_TIMEOUT = 1.0


class Crash(BaseException):
    """Raised by a fault hook: like a process dying there, no ``except Exception`` sees it."""


@pytest.fixture
def env(cassandra_env: dict[str, str]) -> dict[str, str]:
    return {**cassandra_env, "CASSANDRA_TX_TIMEOUT": str(TX_TIMEOUT)}


@pytest.fixture
def make_recorder(env: dict[str, str]) -> Iterator[Callable[[], CassandraApplicationRecorder]]:
    """Recorders with factories (sessions) of their own, like separate processes."""
    factories: list[CassandraFactory] = []

    def make() -> CassandraApplicationRecorder:
        factory = CassandraFactory(Environment("Bank", env))
        factories.append(factory)
        recorder = factory.application_recorder()
        assert isinstance(recorder, CassandraApplicationRecorder)
        return recorder

    yield make
    for factory in factories:
        factory.close()


def event(originator_id: UUID, version: int, topic: str = "topic") -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=b"{}")


def crash_at(point: str) -> Callable[[str, UUID], None]:
    def fault(reached: str, txid: UUID) -> None:
        if reached == point:
            raise Crash(point)

    return fault


def versions(recorder: CassandraApplicationRecorder, originator_id: UUID) -> list[int]:
    return [e.originator_version for e in recorder.select_events(originator_id)]


def raw_rows(recorder: CassandraApplicationRecorder, originator_id: UUID) -> list[Any]:
    return recorder.datastore.execute(
        "SELECT originator_version, txid, committed FROM {keyspace}.events "
        "WHERE application_name = ? AND originator_id = ?",
        (recorder.application_name, originator_id),
    ).all()


def pending(recorder: CassandraApplicationRecorder, *originator_ids: UUID) -> list[Any]:
    """Rows written by a transaction not known to have committed."""
    return [row for oid in originator_ids for row in raw_rows(recorder, oid) if row.txid and not row.committed]


def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def two_aggregates(make_recorder: Callable[[], CassandraApplicationRecorder]) -> tuple[UUID, UUID]:
    """Two aggregates at version 1 each (notifications 1 and 2)."""
    a, b = uuid4(), uuid4()
    assert make_recorder().insert_events([event(a, 1), event(b, 1)]) == [1, 2]
    return a, b


@pytest.mark.parametrize("point", ["after_partition", "before_commit"])
def test_a_writer_dying_before_its_commit_leaves_nothing_visible(
    make_recorder: Callable[[], CassandraApplicationRecorder], two_aggregates: tuple[UUID, UUID], point: str
) -> None:
    a, b = two_aggregates
    writer, reader = make_recorder(), make_recorder()
    writer.faults = crash_at(point)
    with pytest.raises(Crash):
        writer.insert_events([event(a, 2, "sent"), event(b, 2, "received")])
    # Provisional rows are there (one partition or both), but nobody sees them.
    assert pending(reader, a)
    assert versions(reader, a) == [1]
    assert versions(reader, b) == [1]
    assert reader.max_notification_id() == 2
    assert [n.id for n in reader.select_notifications(None, 10)] == [1, 2]
    # A writer that read version 1 conflicts with the provisional row until it is cleared.
    with pytest.raises(IntegrityError):
        reader.insert_events([event(a, 2, "deposited")])

    # After the timeout a reader aborts the transaction and deletes its rows.
    def cleared() -> bool:
        versions(reader, a), versions(reader, b)  # reading is what resolves (and here, aborts)
        return not pending(reader, a, b)

    wait_until(cleared)
    assert versions(reader, a) == [1]
    assert reader.insert_events([event(a, 2, "deposited")]) == [3]
    assert versions(reader, a) == [1, 2]
    assert versions(reader, b) == [1]


def test_a_writer_dying_after_its_commit_leaves_everything_visible(
    make_recorder: Callable[[], CassandraApplicationRecorder], two_aggregates: tuple[UUID, UUID]
) -> None:
    a, b = two_aggregates
    writer, reader = make_recorder(), make_recorder()
    writer.faults = crash_at("after_commit")
    with pytest.raises(Crash):
        writer.insert_events([event(a, 2, "sent"), event(b, 2, "received")])
    # Committed, not yet marked: readers look the decision up, and mark the rows.
    assert all(not row.committed for row in raw_rows(reader, a) if row.originator_version == 2)
    assert versions(reader, a) == [1, 2]
    assert versions(reader, b) == [1, 2]
    assert all(row.committed for row in raw_rows(reader, a) if row.originator_version == 2)
    assert [(n.id, n.originator_id, n.topic) for n in reader.select_notifications(3, 10)] == [
        (3, a, "sent"),
        (4, b, "received"),
    ]
    with pytest.raises(IntegrityError):
        reader.insert_events([event(a, 2, "deposited")])


def test_a_writer_stalled_past_the_timeout_is_aborted_by_a_reader(
    make_recorder: Callable[[], CassandraApplicationRecorder], two_aggregates: tuple[UUID, UUID]
) -> None:
    a, b = two_aggregates
    writer, reader = make_recorder(), make_recorder()

    def stall(point: str, txid: UUID) -> None:
        if point == "before_commit":
            # While the writer stalls, a reader outlives the timeout and aborts it.
            wait_until(lambda: versions(reader, a) == [1] and not pending(reader, a))

    writer.faults = stall
    with pytest.raises(IntegrityError, match="aborted"):
        writer.insert_events([event(a, 2, "sent"), event(b, 2, "received")])
    assert versions(reader, a) == [1]
    assert versions(reader, b) == [1]
    assert raw_rows(reader, b)[-1].originator_version == 1  # the writer took its rows back
    assert reader.max_notification_id() == 2


def test_a_conflict_in_the_second_partition_takes_the_first_back(
    make_recorder: Callable[[], CassandraApplicationRecorder], two_aggregates: tuple[UUID, UUID]
) -> None:
    a, b = two_aggregates
    recorder = make_recorder()
    assert recorder.insert_events([event(b, 2, "deposited")]) == [3]
    with pytest.raises(IntegrityError):
        recorder.insert_events([event(a, 2, "sent"), event(b, 2, "received")])
    assert [row.originator_version for row in raw_rows(recorder, a)] == [1]
    assert versions(recorder, a) == [1]
    assert recorder.max_notification_id() == 3


def test_a_commit_that_timed_out_but_was_applied_counts_once(
    make_recorder: Callable[[], CassandraApplicationRecorder],
    two_aggregates: tuple[UUID, UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver's timeout on a lightweight transaction leaves its outcome unknown: a serial read decides."""
    a, b = two_aggregates
    recorder = make_recorder()
    execute_raw = recorder.datastore.execute_raw
    calls: list[str] = []

    def applied_then_timed_out(statement: Any, params: Any = None) -> Any:
        result = execute_raw(statement, params)
        if _is_commit(recorder, statement):
            calls.append("commit")
            raise WriteTimeout("simulated", write_type=5)  # 5: CAS
        return result

    monkeypatch.setattr(recorder.datastore, "execute_raw", applied_then_timed_out)
    assert recorder.insert_events([event(a, 2, "sent"), event(b, 2, "received")]) == [3, 4]
    assert calls == ["commit"]
    assert versions(recorder, a) == [1, 2]
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 2, 3, 4]


def test_a_commit_that_timed_out_and_was_not_applied_is_tried_again(
    make_recorder: Callable[[], CassandraApplicationRecorder],
    two_aggregates: tuple[UUID, UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = two_aggregates
    recorder = make_recorder()
    execute_raw = recorder.datastore.execute_raw
    calls: list[str] = []

    def timed_out_once(statement: Any, params: Any = None) -> Any:
        if _is_commit(recorder, statement) and not calls:
            calls.append("commit")
            raise WriteTimeout("simulated", write_type=5)
        return execute_raw(statement, params)

    monkeypatch.setattr(recorder.datastore, "execute_raw", timed_out_once)
    assert recorder.insert_events([event(a, 2, "sent"), event(b, 2, "received")]) == [3, 4]
    assert calls == ["commit"]
    assert versions(recorder, b) == [1, 2]


def test_a_commit_that_loses_the_head_of_the_log_tries_again_without_serial_reads(
    make_recorder: Callable[[], CassandraApplicationRecorder],
    two_aggregates: tuple[UUID, UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rival appends between the writer's read of the head and its commit: the
    refusal carries the head the rival left, so the writer's next try needs no read."""
    a, b = two_aggregates
    writer, rival = make_recorder(), make_recorder()
    execute_raw, execute = writer.datastore.execute_raw, writer.datastore.execute
    commits: list[bool] = []
    serial_reads: list[Any] = []

    def rival_first(statement: Any, params: Any = None) -> Any:
        if _is_commit(writer, statement):
            if not commits:
                assert rival.insert_events([event(uuid4(), 1, "opened")]) == [3]
            result = execute_raw(statement, params)
            commits.append(result.was_applied)
            return result
        return execute_raw(statement, params)

    def counted(statement: Any, params: Any = None, *, serial: bool = False) -> Any:
        if serial:
            serial_reads.append(statement)
        return execute(statement, params, serial=serial)

    monkeypatch.setattr(writer.datastore, "execute_raw", rival_first)
    monkeypatch.setattr(writer.datastore, "execute", counted)
    assert writer.insert_events([event(a, 2, "sent"), event(b, 2, "received")]) == [4, 5]
    assert commits == [False, True]
    assert serial_reads == []
    assert [n.id for n in writer.select_notifications(None, 10)] == [1, 2, 3, 4, 5]


def test_a_commit_that_keeps_losing_the_head_of_the_log_gives_up_in_time_and_commits_nothing(
    env: dict[str, str],
    make_recorder: Callable[[], CassandraApplicationRecorder],
    two_aggregates: tuple[UUID, UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer moving the log's head before every try, for longer than ``commit_timeout``:
    the commit gives up with an error a web recipe answers 503, and nothing of it is visible;
    its rows are aborted once they are ``tx_timeout`` old, and the versions are free again."""
    a, b = two_aggregates
    factory = CassandraFactory(Environment("Bank", {**env, "CASSANDRA_COMMIT_TIMEOUT": "0.5"}))
    try:
        writer = factory.application_recorder()
        assert isinstance(writer, CassandraApplicationRecorder)
        reader, rival = make_recorder(), make_recorder()
        execute_raw = writer.datastore.execute_raw
        lost: list[bool] = []

        def rival_first(statement: Any, params: Any = None) -> Any:
            if _is_commit(writer, statement):
                rival.insert_events([event(uuid4(), 1, "opened")])
                result = execute_raw(statement, params)
                lost.append(not result.was_applied)
                return result
            return execute_raw(statement, params)

        monkeypatch.setattr(writer.datastore, "execute_raw", rival_first)
        started = time.monotonic()
        with pytest.raises(NotificationLogBusyError) as busy:
            writer.insert_events([event(a, 2, "sent"), event(b, 2, "received")])
        assert time.monotonic() - started < 0.5 + 5.0  # one more try, at most, after the time is up
        assert len(lost) > 1
        assert all(lost)
        assert store_unavailable(busy.value)
        assert versions(reader, a) == [1]
        wait_until(lambda: versions(reader, a) == [1] and not pending(reader, a, b))
        assert reader.insert_events([event(a, 2, "deposited")]) == [len(lost) + 3]
    finally:
        factory.close()


def _is_commit(recorder: CassandraApplicationRecorder, statement: Any) -> bool:
    """Whether ``statement`` is a commit batch: it holds the decision insert."""
    decision_id = recorder.datastore.prepare(COMMIT_DECISION).query_id
    entries = getattr(statement, "_statements_and_parameters", None) or []
    return any(entry[1] == decision_id for entry in entries)


def test_a_writer_backs_off_from_its_second_lost_race_in_a_row_and_never_long() -> None:
    assert back_off_delay(1) == 0.0
    for lost in range(2, 12):
        delays = [back_off_delay(lost) for _ in range(200)]
        assert all(0 <= delay <= min(BACK_OFF_CAP, 0.001 * 2 ** (lost - 1)) for delay in delays)
        assert max(delays) > 0
