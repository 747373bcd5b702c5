"""The store against the test cases ``eventsourcing`` ships for persistence modules.

Each test case runs in a keyspace of its own on the session's Cassandra node.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.tests import persistence as eventsourcing_tests
from eventsourcing.utils import Environment

from eventsourcing_cassandra.factory import CassandraFactory
from eventsourcing_cassandra.recorders import (
    CassandraAggregateRecorder,
    CassandraApplicationRecorder,
    CassandraProcessRecorder,
    CassandraTrackingRecorder,
)

APPLICATION = "TestApplication"


@pytest.fixture(autouse=True)
def _factory(request: pytest.FixtureRequest, cassandra_env: dict[str, str]) -> Any:
    """Before each test case's setUp: a factory on a fresh keyspace, closed afterwards."""
    settings = dict(getattr(request.instance, "settings", {}))
    if marker := request.node.get_closest_marker("log_bucket_size"):
        settings["CASSANDRA_LOG_BUCKET_SIZE"] = str(marker.args[0])
    env = Environment(APPLICATION, {**cassandra_env, **settings})
    request.instance.env = env
    request.instance.cassandra = factory = CassandraFactory(env)
    yield
    factory.close()


class Recorders:
    cassandra: CassandraFactory


class TestAggregateRecorder(Recorders, eventsourcing_tests.AggregateRecorderTestCase):
    def create_recorder(self) -> CassandraAggregateRecorder:
        return self.cassandra.aggregate_recorder("events")


class TestSnapshotRecorder(Recorders, eventsourcing_tests.AggregateRecorderTestCase):
    def create_recorder(self) -> CassandraAggregateRecorder:
        return self.cassandra.aggregate_recorder("snapshots")


class TestApplicationRecorder(Recorders, eventsourcing_tests.ApplicationRecorderTestCase[CassandraApplicationRecorder]):
    def create_recorder(self) -> CassandraApplicationRecorder:
        return self.cassandra.application_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIds(Recorders, eventsourcing_tests.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> CassandraApplicationRecorder:
        return self.cassandra.application_recorder()


class TestTrackingRecorder(Recorders, eventsourcing_tests.TrackingRecorderTestCase):
    def create_recorder(self) -> CassandraTrackingRecorder:
        return self.cassandra.tracking_recorder()


class TestProcessRecorder(Recorders, eventsourcing_tests.ProcessRecorderTestCase):
    def create_recorder(self) -> CassandraProcessRecorder:
        return self.cassandra.process_recorder()


# The same cases with the log in buckets of 3 ids (the default is 100,000), so
# that their saves cross from one bucket to the next again and again.
SMALL_BUCKETS = {"CASSANDRA_LOG_BUCKET_SIZE": "3"}


class TestApplicationRecorderInSmallBuckets(TestApplicationRecorder):
    settings = SMALL_BUCKETS

    # Ten writers, each saving 100 events 100 times: in buckets of 3 every save
    # closes one and the next opens another (50 s of a 2-core machine's test run);
    # in buckets of 1,000 one save in ten does, still raced for by all ten writers.
    @pytest.mark.log_bucket_size(1000)
    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        super().test_concurrent_no_conflicts(initial_position)


class TestNonInterleavingNotificationIdsInSmallBuckets(TestNonInterleavingNotificationIds):
    settings = SMALL_BUCKETS


class TestTrackingRecorderInSmallBuckets(TestTrackingRecorder):
    settings = SMALL_BUCKETS


class TestProcessRecorderInSmallBuckets(TestProcessRecorder):
    settings = SMALL_BUCKETS


class CustomTrackingRecorder(CassandraTrackingRecorder):
    pass


class TestInfrastructureFactory(eventsourcing_tests.InfrastructureFactoryTestCase[CassandraFactory]):
    env: Environment

    def setUp(self) -> None:
        # self.env was set by the fixture: this test's keyspace, PERSISTENCE_MODULE=eventsourcing_cassandra.
        assert self.env.get(InfrastructureFactory.PERSISTENCE_MODULE) == "eventsourcing_cassandra"
        super().setUp()

    def expected_factory_class(self) -> type[CassandraFactory]:
        return CassandraFactory

    def expected_aggregate_recorder_class(self) -> type[CassandraAggregateRecorder]:
        return CassandraAggregateRecorder

    def expected_application_recorder_class(self) -> type[CassandraApplicationRecorder]:
        return CassandraApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[CassandraTrackingRecorder]:
        return CassandraTrackingRecorder

    def tracking_recorder_subclass(self) -> type[CassandraTrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[CassandraProcessRecorder]:
        return CassandraProcessRecorder
