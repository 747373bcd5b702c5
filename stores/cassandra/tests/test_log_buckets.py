"""The notification log in buckets: no partition grows without bound, and nothing
of the log's guarantees changes at a bucket's end.

Buckets of 3 ids here, so that a few saves cross several of them (the default is
100,000). ``test_eventsourcing_cases`` also runs eventsourcing's own test cases
in buckets of 3.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, ProgrammingError, StoredEvent, Tracking
from eventsourcing.utils import Environment

from eventsourcing_cassandra.factory import CassandraFactory
from eventsourcing_cassandra.recorders import CassandraApplicationRecorder, CassandraProcessRecorder

BUCKET_SIZE = 3


@pytest.fixture
def env(cassandra_env: dict[str, str]) -> dict[str, str]:
    return {**cassandra_env, "CASSANDRA_LOG_BUCKET_SIZE": str(BUCKET_SIZE)}


@pytest.fixture
def factories(env: dict[str, str]) -> Iterator[Callable[..., CassandraFactory]]:
    """Factories with sessions of their own, like separate processes."""
    made: list[CassandraFactory] = []

    def make(**settings: str) -> CassandraFactory:
        made.append(CassandraFactory(Environment("Bank", {**env, **settings})))
        return made[-1]

    yield make
    for factory in made:
        factory.close()


def recorder_of(factory: CassandraFactory) -> CassandraApplicationRecorder:
    recorder = factory.application_recorder()
    assert isinstance(recorder, CassandraApplicationRecorder)
    return recorder


def event(originator_id: UUID, version: int = 1, topic: str = "topic") -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=b"{}")


def notification_rows_by_bucket(recorder: CassandraApplicationRecorder) -> dict[int, list[int]]:
    rows = recorder.datastore.execute(
        "SELECT bucket, position FROM {keyspace}.log_buckets WHERE kind = 0 ALLOW FILTERING"
    ).all()
    buckets: dict[int, list[int]] = {}
    for row in rows:
        buckets.setdefault(row.bucket, []).append(row.position)
    return {bucket: sorted(positions) for bucket, positions in sorted(buckets.items())}


def test_the_log_runs_on_across_buckets_each_holding_at_most_a_bucket_and_a_commit(
    factories: Callable[..., CassandraFactory],
) -> None:
    """Four writers, each a process of its own, 12 saves each of one or two events:
    the ids run 1..N without a gap, each event once, in buckets of 3 ids (a commit
    may run past its bucket's end: by one id at most here)."""
    writers = [recorder_of(factories()) for _ in range(4)]
    saved: list[list[int]] = [[] for _ in writers]
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for number in range(12):
                events = [event(uuid4()) for _ in range(1 + number % 2)]
                saved[index].extend(writers[index].insert_events(events) or [])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(index,)) for index in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    total = 4 * (6 * 1 + 6 * 2)
    assert sorted(i for ids in saved for i in ids) == list(range(1, total + 1))
    reader = recorder_of(factories())
    assert [n.id for n in reader.select_notifications(None, 1000)] == list(range(1, total + 1))
    assert [n.id for n in reader.select_notifications(10, 5)] == [10, 11, 12, 13, 14]
    assert [n.id for n in reader.select_notifications(10, 100, stop=20)] == list(range(10, 21))
    assert reader.max_notification_id() == total
    buckets = notification_rows_by_bucket(reader)
    assert list(buckets) == list(range(len(buckets)))  # none skipped
    for bucket, positions in buckets.items():
        assert positions[0] >= max(1, bucket * BUCKET_SIZE)
        assert positions[-1] <= (bucket + 1) * BUCKET_SIZE  # the last commit's second event may run past
        assert len(positions) <= BUCKET_SIZE + 1


def test_a_notification_in_the_overflow_of_the_bucket_before_is_found(
    factories: Callable[..., CassandraFactory],
) -> None:
    """Ids 2 and 3 in one save: they are in bucket 0 (its first id's), though 3 is
    in bucket 1's range; reading from 3 finds it, and the log goes on after it."""
    recorder = recorder_of(factories())
    assert recorder.insert_events([event(uuid4())]) == [1]
    assert recorder.insert_events([event(uuid4()), event(uuid4())]) == [2, 3]
    assert recorder.insert_events([event(uuid4())]) == [4]
    assert notification_rows_by_bucket(recorder) == {0: [1, 2, 3], 1: [4]}
    reader = recorder_of(factories())
    assert [n.id for n in reader.select_notifications(3, 10)] == [3, 4]
    assert [n.id for n in reader.select_notifications(2, 10, inclusive_of_start=False)] == [3, 4]


def test_a_transaction_whose_bucket_closes_before_it_commits_moves_to_the_newest(
    factories: Callable[..., CassandraFactory],
) -> None:
    """A rival fills the bucket between the writer's provisional rows and its commit:
    the writer records in the bucket it began in that its decision moved to the newest
    (where readers follow it), and commits there."""
    writer, rival = recorder_of(factories()), recorder_of(factories())
    assert writer.insert_events([event(uuid4())]) == [1]  # the writer knows bucket 0
    a, b = uuid4(), uuid4()
    transactions: list[UUID] = []

    def rival_fills_the_bucket(point: str, txid: UUID) -> None:
        if point == "before_commit":
            transactions.append(txid)
            assert rival.insert_events([event(uuid4()), event(uuid4())]) == [2, 3]  # bucket 0 now ends at 3

    writer.faults = rival_fills_the_bucket
    assert writer.insert_events([event(a), event(b)]) == [4, 5]
    (txid,) = transactions
    reader = recorder_of(factories())
    status, bucket, _row = reader._decision_row(txid, 0, serial=True)
    assert (status, bucket) == ("committed", 1)
    assert [e.originator_version for e in reader.select_events(a)] == [1]
    assert [n.id for n in reader.select_notifications(None, 10)] == [1, 2, 3, 4, 5]
    assert notification_rows_by_bucket(reader) == {0: [1, 2, 3], 1: [4, 5]}


def test_a_reader_aborting_a_transaction_stalled_at_a_bucket_s_end_wins_over_its_move(
    factories: Callable[..., CassandraFactory],
) -> None:
    """The writer stalls past ``tx_timeout`` while its bucket closes; a reader aborts
    it in the bucket it began in. The writer's move is then refused: it commits
    nothing, and its versions are free again."""
    writer = recorder_of(factories(CASSANDRA_TX_TIMEOUT="1.0"))
    rival = recorder_of(factories())
    reader = recorder_of(factories(CASSANDRA_TX_TIMEOUT="1.0"))
    assert writer.insert_events([event(uuid4())]) == [1]
    a = uuid4()

    def stall_while_the_bucket_closes(point: str, txid: UUID) -> None:
        if point == "before_commit":
            assert rival.insert_events([event(uuid4()), event(uuid4())]) == [2, 3]
            time.sleep(1.5)  # past tx_timeout: a reader may abort it now
            assert reader.select_events(a) == []
            assert reader._decision_row(txid, 0, serial=True)[0] == "aborted"

    writer.faults = stall_while_the_bucket_closes
    with pytest.raises(IntegrityError, match="was aborted"):
        writer.insert_events([event(a)])
    assert [n.id for n in reader.select_notifications(None, 10)] == [1, 2, 3]
    assert reader.insert_events([event(a)]) == [4]


def test_tracking_positions_move_with_the_log_from_bucket_to_bucket(
    factories: Callable[..., CassandraFactory],
) -> None:
    """A process recorder's positions, moved with its events, are found after the
    bucket they were written in has closed; one already processed is refused there too."""
    factory = factories()
    process = factory.process_recorder()
    assert isinstance(process, CassandraProcessRecorder)
    for number in range(1, 8):
        process.insert_events([event(uuid4())], tracking=Tracking("Upstream", number))
    process.insert_tracking(Tracking("Other", 1))  # a position alone, in the newest bucket
    assert process.max_notification_id() == 7
    assert notification_rows_by_bucket(process) == {0: [1, 2], 1: [3, 4, 5], 2: [6, 7]}
    other = factories().process_recorder()
    assert other.max_tracking_id("Upstream") == 7
    assert other.max_tracking_id("Other") == 1
    with pytest.raises(IntegrityError):
        other.insert_events([event(uuid4())], tracking=Tracking("Upstream", 7))
    with pytest.raises(IntegrityError):
        other.insert_tracking(Tracking("Other", 1))
    other.insert_events([event(uuid4()), event(uuid4())], tracking=Tracking("Upstream", 8))  # 8, 9: closes bucket 2
    assert process.max_tracking_id("Upstream") == 8
    other.insert_events([event(uuid4())], tracking=Tracking("Upstream", 9))  # 10: opens bucket 3
    assert notification_rows_by_bucket(process) == {0: [1, 2], 1: [3, 4, 5], 2: [6, 7, 8, 9], 3: [10]}
    assert process.max_tracking_id("Other") == 1  # carried over when bucket 3 opened
    assert process.max_tracking_id("Upstream") == 9


def test_a_keyspace_keeps_the_bucket_size_it_was_first_used_with(
    factories: Callable[..., CassandraFactory],
) -> None:
    recorder_of(factories()).insert_events([event(uuid4())])
    with pytest.raises(ProgrammingError, match="buckets of 3"):
        recorder_of(factories(CASSANDRA_LOG_BUCKET_SIZE="100000")).insert_events([event(uuid4())])


def test_a_save_of_more_events_than_a_bucket_holds_runs_past_the_buckets_it_fills(
    factories: Callable[..., CassandraFactory],
) -> None:
    """Eight ids in one save, from id 2: all in bucket 0, its first id's; the
    buckets of the ranges it filled are never opened, and reading finds every id."""
    recorder = recorder_of(factories())
    assert recorder.insert_events([event(uuid4())]) == [1]
    assert recorder.insert_events([event(uuid4()) for _ in range(8)]) == list(range(2, 10))
    assert recorder.insert_events([event(uuid4())]) == [10]
    assert notification_rows_by_bucket(recorder) == {0: list(range(1, 10)), 3: [10]}
    reader = recorder_of(factories())
    for start in range(1, 11):
        assert [n.id for n in reader.select_notifications(start, 100)] == list(range(start, 11))
    assert reader.select_notifications(11, 100) == []
    assert reader.select_notifications(1000, 100) == []


def test_every_statement_the_store_prepares_binds_its_whole_partition_key(
    factories: Callable[..., CassandraFactory],
) -> None:
    """The driver's token-aware policy sends a statement to a replica of its partition
    only when every part of the partition key is bound (``routing_key_indexes``); with
    one written into the CQL instead, any node coordinates it, and on a ring lightweight
    transactions coordinated by different nodes duel in Paxos: the ceiling's generator,
    with the bucket written in, had writes time out there that the store's did not."""
    factory = factories()
    process = factory.process_recorder()
    assert isinstance(process, CassandraProcessRecorder)
    originator_id = uuid4()
    for number in range(1, 6):  # across buckets: opening one, carrying tracking over
        process.insert_events([event(originator_id, number)], tracking=Tracking("Upstream", number))
    process.insert_tracking(Tracking("Other", 1))
    process.insert_events([event(uuid4())])  # a commit without tracking
    reader = factories().process_recorder()  # a process that knows no bucket yet
    assert [n.id for n in reader.select_notifications(1, 10)] == [1, 2, 3, 4, 5, 6]
    assert len(reader.select_events(originator_id)) == 5
    assert reader.max_notification_id() == 6
    assert reader.max_tracking_id("Upstream") == 5
    for recorder in (process, reader):
        prepared = recorder.datastore.prepared_statements()
        assert prepared
        assert [cql for cql, statement in prepared.items() if statement.routing_key_indexes is None] == []
    # The check can fail: the bucket written in, as the generator had it.
    written_in = "SELECT head FROM {keyspace}.log_buckets WHERE application_name = ? AND bucket = 0 LIMIT 1"
    assert reader.datastore.prepare(written_in).routing_key_indexes is None
