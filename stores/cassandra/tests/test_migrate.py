"""A keyspace written by the store's first version (the log in one partition of
``application_log``) is refused until ``migrate`` copies its log into buckets; then
every notification, position and decision is where this version looks for it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid1, uuid4

import pytest
from cassandra.cluster import Session
from eventsourcing.persistence import ProgrammingError, StoredEvent, Tracking
from eventsourcing.utils import Environment

from eventsourcing_cassandra.factory import CassandraFactory
from eventsourcing_cassandra.migrate import main, migrate
from eventsourcing_cassandra.recorders import CassandraProcessRecorder

#: The first version's tables, as it created them.
FIRST_VERSION_TABLES = [
    """CREATE TABLE {keyspace}.events (
        application_name text, originator_id uuid, originator_version bigint, topic text, state blob,
        txid timeuuid, committed boolean, created_at timestamp,
        PRIMARY KEY ((application_name, originator_id), originator_version))""",
    """CREATE TABLE {keyspace}.snapshots (
        application_name text, originator_id uuid, originator_version bigint, topic text, state blob,
        txid timeuuid, committed boolean, created_at timestamp,
        PRIMARY KEY ((application_name, originator_id), originator_version))""",
    """CREATE TABLE {keyspace}.application_log (
        application_name text, kind tinyint, position bigint, key text, head bigint static,
        originator_id uuid, originator_version bigint, topic text, state blob, txid timeuuid,
        status text, first_id bigint, count int, tracking_id bigint,
        PRIMARY KEY ((application_name), kind, position, key))""",
]
APPLICATION = "Bank"
BUCKET_SIZE = 3


@pytest.fixture
def first_version_keyspace(cassandra_admin: Session, cassandra_env: dict[str, str]) -> Iterator[dict[str, UUID]]:
    """Five events of five aggregates, as the first version left them: notifications
    1-5 and the head; the last one's transaction committed but its row never marked
    (its writer died after the commit); a tracking position of 7 from ``Upstream``."""
    keyspace = cassandra_env["CASSANDRA_KEYSPACE"]  # made for the test, empty
    for table in FIRST_VERSION_TABLES:
        cassandra_admin.execute(table.format(keyspace=keyspace))
    aggregates = [uuid4() for _ in range(5)]
    unmarked = uuid1()
    for position, aggregate in enumerate(aggregates, start=1):
        txid = unmarked if position == 5 else uuid1()
        cassandra_admin.execute(
            f"INSERT INTO {keyspace}.events (application_name, originator_id, originator_version, topic, state, "
            "txid, committed, created_at) VALUES (%s, %s, 1, 'opened', 0x7b7d, %s, %s, %s)",
            (APPLICATION, aggregate, txid, position != 5, datetime.now(UTC)),
        )
        cassandra_admin.execute(
            f"INSERT INTO {keyspace}.application_log (application_name, kind, position, key, originator_id, "
            "originator_version, topic, state, txid) VALUES (%s, 0, %s, '', %s, 1, 'opened', 0x7b7d, %s)",
            (APPLICATION, position, aggregate, txid),
        )
        cassandra_admin.execute(
            f"INSERT INTO {keyspace}.application_log (application_name, kind, position, key, status, first_id, "
            "count) VALUES (%s, 1, 0, %s, 'committed', %s, 1)",
            (APPLICATION, str(txid), position),
        )
    cassandra_admin.execute(
        f"UPDATE {keyspace}.application_log SET head = 5 WHERE application_name = %s",
        (APPLICATION,),
    )
    cassandra_admin.execute(
        f"INSERT INTO {keyspace}.application_log (application_name, kind, position, key, tracking_id) "
        "VALUES (%s, 2, 0, 'Upstream', 7)",
        (APPLICATION,),
    )
    yield {"last": aggregates[-1]}


def test_a_first_version_keyspace_is_refused_then_migrated_and_written_on(
    cassandra_env: dict[str, str], first_version_keyspace: dict[str, UUID]
) -> None:
    env = Environment(APPLICATION, {**cassandra_env, "CASSANDRA_LOG_BUCKET_SIZE": str(BUCKET_SIZE)})
    refused = CassandraFactory(env)
    try:
        with pytest.raises(ProgrammingError, match=r"eventsourcing_cassandra\.migrate"):
            refused.application_recorder()
        assert migrate(refused.datastore) == {APPLICATION: 5}
    finally:
        refused.close()
    factory = CassandraFactory(env)
    try:
        recorder = factory.process_recorder()
        assert isinstance(recorder, CassandraProcessRecorder)
        assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 2, 3, 4, 5]
        assert recorder.max_notification_id() == 5
        assert recorder.max_tracking_id("Upstream") == 7
        # The unmarked row's decision is found where migrate put the first version's decisions.
        assert [e.originator_version for e in recorder.select_events(first_version_keyspace["last"])] == [1]
        event = StoredEvent(originator_id=uuid4(), originator_version=1, topic="opened", state=b"{}")
        assert recorder.insert_events([event], tracking=Tracking("Upstream", 8)) == [6]
        assert recorder.max_tracking_id("Upstream") == 8
        assert [n.id for n in recorder.select_notifications(4, 10)] == [4, 5, 6]
    finally:
        factory.close()


def test_migrate_on_a_keyspace_without_a_first_version_log_copies_nothing(
    cassandra_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    hosts, keyspace = cassandra_env["CASSANDRA_HOSTS"], cassandra_env["CASSANDRA_KEYSPACE"]
    assert main(["--hosts", hosts, "--keyspace", keyspace]) == 0
    assert "nothing to copy" in capsys.readouterr().out
