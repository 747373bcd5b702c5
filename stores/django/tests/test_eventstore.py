"""The event store against the test cases ``eventsourcing`` ships for persistence modules.

Each test case runs on its own fresh database (SQLite, or PostgreSQL with
``--store postgresql``), through Django's connection.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import pytest
from django.db import connections, transaction
from eventsourcing import persistence
from eventsourcing.persistence import InfrastructureFactory, InfrastructureFactoryError, StoredEvent
from eventsourcing.tests import persistence as eventsourcing_tests
from eventsourcing.utils import Environment, get_topic

from eventstore.factory import DjangoFactory
from eventstore.models import SnapshotRecord
from eventstore.recorders import (
    DjangoAggregateRecorder,
    DjangoApplicationRecorder,
    DjangoProcessRecorder,
    DjangoTrackingRecorder,
)

APPLICATION = "TestApplication"


@pytest.fixture(autouse=True)
def _fresh_database(django_database: str) -> None:
    """Runs before each test case's setUp: a migrated database of its own."""


class TestAggregateRecorder(eventsourcing_tests.AggregateRecorderTestCase):
    def create_recorder(self) -> DjangoAggregateRecorder:
        return DjangoAggregateRecorder(APPLICATION)


class TestSnapshotRecorder(eventsourcing_tests.AggregateRecorderTestCase):
    def create_recorder(self) -> DjangoAggregateRecorder:
        return DjangoAggregateRecorder(APPLICATION, model=SnapshotRecord)


class TestApplicationRecorder(eventsourcing_tests.ApplicationRecorderTestCase[DjangoApplicationRecorder]):
    def create_recorder(self) -> DjangoApplicationRecorder:
        return DjangoApplicationRecorder(APPLICATION)

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIds(eventsourcing_tests.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> DjangoApplicationRecorder:
        return DjangoApplicationRecorder(APPLICATION)


class TestTrackingRecorder(eventsourcing_tests.TrackingRecorderTestCase):
    def create_recorder(self) -> DjangoTrackingRecorder:
        return DjangoTrackingRecorder(APPLICATION)


class TestProcessRecorder(eventsourcing_tests.ProcessRecorderTestCase):
    def create_recorder(self) -> DjangoProcessRecorder:
        return DjangoProcessRecorder(APPLICATION)


class CustomTrackingRecorder(DjangoTrackingRecorder):
    pass


class TestInfrastructureFactory(eventsourcing_tests.InfrastructureFactoryTestCase[DjangoFactory]):
    def setUp(self) -> None:
        self.env = Environment("TestCase", {InfrastructureFactory.PERSISTENCE_MODULE: "eventstore.factory"})
        super().setUp()

    def expected_factory_class(self) -> type[DjangoFactory]:
        return DjangoFactory

    def expected_aggregate_recorder_class(self) -> type[DjangoAggregateRecorder]:
        return DjangoAggregateRecorder

    def expected_application_recorder_class(self) -> type[DjangoApplicationRecorder]:
        return DjangoApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[DjangoTrackingRecorder]:
        return DjangoTrackingRecorder

    def tracking_recorder_subclass(self) -> type[DjangoTrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[DjangoProcessRecorder]:
        return DjangoProcessRecorder


# --- beyond eventsourcing's test cases ------------------------------------------


def stored_event() -> StoredEvent:
    return StoredEvent(originator_id=uuid4(), originator_version=1, topic="topic", state=b"{}")


def test_a_second_writer_waits_until_the_first_commits() -> None:
    """Notification ids in commit order: no reader can pass an id that is filled in later."""
    recorder = DjangoApplicationRecorder(APPLICATION)
    first_inserted, release_first, second_returned = threading.Event(), threading.Event(), threading.Event()
    ids: dict[str, Any] = {}

    def first_writer() -> None:
        try:
            with transaction.atomic():
                ids["first"] = recorder.insert_events([stored_event()])
                first_inserted.set()
                release_first.wait(30)
        finally:
            connections.close_all()  # this thread's connection

    def second_writer() -> None:
        try:
            first_inserted.wait(30)
            ids["second"] = recorder.insert_events([stored_event()])
            second_returned.set()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_writer), threading.Thread(target=second_writer)]
    for thread in threads:
        thread.start()
    try:
        assert first_inserted.wait(30)
        assert not second_returned.wait(1.0), "the second writer did not wait for the first to commit"
        assert recorder.max_notification_id() is None  # readers are not blocked, and see nothing yet
    finally:
        release_first.set()
        for thread in threads:
            thread.join(30)
    assert ids["first"] < ids["second"]
    assert [n.id for n in recorder.select_notifications(None, 10)] == [*ids["first"], *ids["second"]]


def test_events_saved_in_a_rolled_back_transaction_are_gone() -> None:
    recorder = DjangoApplicationRecorder(APPLICATION)
    event = stored_event()
    with pytest.raises(RuntimeError), transaction.atomic():
        recorder.insert_events([event])
        assert len(recorder.select_events(event.originator_id)) == 1  # visible inside the transaction
        raise RuntimeError
    assert recorder.select_events(event.originator_id) == []


def test_a_failed_insert_leaves_the_callers_transaction_usable() -> None:
    recorder = DjangoApplicationRecorder(APPLICATION)
    event = stored_event()
    recorder.insert_events([event])
    with transaction.atomic():
        with pytest.raises(persistence.IntegrityError):
            recorder.insert_events([event])  # rolled back to its savepoint
        other = stored_event()
        recorder.insert_events([other])
    assert len(recorder.select_events(other.originator_id)) == 1


def test_applications_keep_their_own_sequences() -> None:
    one, two = DjangoApplicationRecorder("One"), DjangoApplicationRecorder("Two")
    event = stored_event()
    one.insert_events([event])
    two.insert_events([event])  # the same aggregate id and version, another application
    assert [n.originator_id for n in one.select_notifications(None, 10)] == [event.originator_id]
    assert [n.originator_id for n in two.select_notifications(None, 10)] == [event.originator_id]
    assert two.max_notification_id() == 2
    assert DjangoApplicationRecorder("Three").max_notification_id() is None


def test_ids_that_are_not_uuids_are_refused_clearly() -> None:
    recorder = DjangoApplicationRecorder(APPLICATION)
    event = StoredEvent(originator_id="not-a-uuid", originator_version=1, topic="topic", state=b"{}")
    with pytest.raises(persistence.DataError, match="UUID"):
        recorder.insert_events([event])
    assert recorder.max_notification_id() is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DB_ALIAS": "elsewhere"}, "not one of Django's DATABASES"),
        ({"APPLICATION_RECORDER_TOPIC": get_topic(DjangoTrackingRecorder)}, "must name a subclass"),
        ({"PROCESS_RECORDER_TOPIC": "eventstore.recorders:NoSuchRecorder"}, "NoSuchRecorder"),
    ],
)
def test_bad_settings_are_refused_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(Exception, match=message):
        factory = DjangoFactory(Environment("TestCase", env))
        factory.application_recorder()
        factory.process_recorder()


def test_only_events_and_snapshots_have_tables() -> None:
    with pytest.raises(InfrastructureFactoryError, match="'audit'"):
        DjangoFactory(Environment("TestCase")).aggregate_recorder("audit")
