"""The factory: settings, lazy connection per process, fork safety, close()."""

from __future__ import annotations

import itertools
import os
from uuid import uuid4

import pytest
from eventsourcing.persistence import InfrastructureFactoryError, StoredEvent
from eventsourcing.utils import Environment

from eventsourcing_cassandra.factory import CassandraFactory, parse_hosts
from eventsourcing_cassandra.recorders import CassandraApplicationRecorder


def stored_event() -> StoredEvent:
    return StoredEvent(originator_id=uuid4(), originator_version=1, topic="topic", state=b"{}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", (["127.0.0.1"], 9042)),
        ("127.0.0.1:9142", (["127.0.0.1"], 9142)),
        ("a:9042, b:9042", (["a", "b"], 9042)),
        ("a,b", (["a", "b"], 9042)),
    ],
)
def test_hosts_are_parsed(value: str, expected: tuple[list[str], int]) -> None:
    assert parse_hosts(value) == expected


@pytest.mark.parametrize(("value", "message"), [("a:1,b:2", "same CQL port"), (" , ", "names no host")])
def test_bad_hosts_are_refused_clearly(value: str, message: str) -> None:
    with pytest.raises(InfrastructureFactoryError, match=message):
        parse_hosts(value)


def test_nothing_connects_until_the_first_query(cassandra_env: dict[str, str]) -> None:
    factory = CassandraFactory(Environment("Bank", {**cassandra_env, "CREATE_TABLE": "n"}))
    factory.application_recorder()
    assert not factory.datastore.is_connected
    factory.close()


def test_a_forked_child_connects_afresh_and_the_parent_keeps_its_session(cassandra_env: dict[str, str]) -> None:
    factory = CassandraFactory(Environment("Bank", cassandra_env))
    recorder = factory.application_recorder()  # creates the tables: connected in this process
    assert isinstance(recorder, CassandraApplicationRecorder)
    parent_session = factory.datastore.session()
    recorder.insert_events([stored_event()])
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: use the inherited recorder, report, and leave without clean-up
        try:
            fresh = factory.datastore.session() is not parent_session
            ids = recorder.insert_events([stored_event()])
            os.write(write_fd, f"{fresh} {ids}".encode())
            factory.close()
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as reader:
        report = reader.read()
    os.waitpid(pid, 0)
    assert report == "True [2]"
    assert factory.datastore.session() is parent_session
    assert recorder.insert_events([stored_event()]) == [3]
    factory.close()
    assert not factory.datastore.is_connected


def test_ids_that_are_not_uuids_are_refused_clearly(cassandra_env: dict[str, str]) -> None:
    from eventsourcing.persistence import DataError

    factory = CassandraFactory(Environment("Bank", cassandra_env))
    recorder = factory.application_recorder()
    with pytest.raises(DataError, match="UUID"):
        recorder.insert_events([StoredEvent(originator_id="not-a-uuid", originator_version=1, topic="t", state=b"")])
    factory.close()


def test_applications_keep_their_own_logs(cassandra_env: dict[str, str]) -> None:
    one = CassandraFactory(Environment("One", cassandra_env))
    two = CassandraFactory(Environment("Two", cassandra_env))
    event = stored_event()
    assert one.application_recorder().insert_events([event]) == [1]
    assert two.application_recorder().insert_events([event]) == [1]  # same aggregate id, other application
    recorder = two.application_recorder()
    assert isinstance(recorder, CassandraApplicationRecorder)
    assert recorder.max_notification_id() == 1
    one.close()
    two.close()


def test_a_session_tries_to_reach_a_lost_node_again_for_ever_and_never_long_apart(
    cassandra_env: dict[str, str],
) -> None:
    """The driver's own policy gives up after 64 tries, and waits up to 600 s between them."""
    factory = CassandraFactory(Environment("Bank", {**cassandra_env, "CASSANDRA_RECONNECT_MAX_DELAY": "3"}))
    pauses = list(itertools.islice(factory.datastore.reconnection_policy().new_schedule(), 1000))
    assert len(pauses) == 1000
    assert pauses[0] < 1 and max(pauses) == 3.0
    assert CassandraFactory(Environment("Bank", cassandra_env)).datastore.reconnect_max_delay == 10.0
    factory.close()


def test_bad_settings_are_refused_clearly(cassandra_env: dict[str, str]) -> None:
    with pytest.raises(InfrastructureFactoryError, match="consistency"):
        CassandraFactory(Environment("Bank", {**cassandra_env, "CASSANDRA_CONSISTENCY": "SOMETIMES"}))
    with pytest.raises(InfrastructureFactoryError, match="seconds"):
        CassandraFactory(Environment("Bank", {**cassandra_env, "CASSANDRA_TX_TIMEOUT": "soon"}))
