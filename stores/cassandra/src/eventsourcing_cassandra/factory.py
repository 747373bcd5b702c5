"""The persistence module an application names to store its events in Cassandra.

Set ``PERSISTENCE_MODULE=eventsourcing_cassandra`` (or
``eventsourcing_cassandra.factory``); ``eventsourcing`` finds ``Factory``.

Settings, from the application's environment (``eventsourcing`` looks for
``<APPLICATION_NAME>_<KEY>`` first, then ``<KEY>``):

- ``CASSANDRA_HOSTS``: ``host[:port],host[:port]`` (default ``127.0.0.1:9042``);
- ``CASSANDRA_KEYSPACE``: the keyspace (default ``eventsourcing``);
- ``CASSANDRA_REPLICATION``: the replication map used when this module creates
  the keyspace (default ``{'class': 'SimpleStrategy', 'replication_factor': 1}``);
- ``CASSANDRA_USERNAME``, ``CASSANDRA_PASSWORD``: for ``PasswordAuthenticator``;
- ``CASSANDRA_LOCAL_DC``: the data centre to send requests to;
- ``CASSANDRA_CONSISTENCY`` (``LOCAL_QUORUM``), ``CASSANDRA_SERIAL_CONSISTENCY`` (``LOCAL_SERIAL``);
- ``CASSANDRA_REQUEST_TIMEOUT`` (seconds, 15), ``CASSANDRA_TX_TIMEOUT`` (seconds, 10:
  when a reader may abort a transaction whose writer went silent),
  ``CASSANDRA_COMMIT_TIMEOUT`` (seconds, 30);
- ``CASSANDRA_PROTOCOL_VERSION``: the native protocol version (default 5, Cassandra 4.0 and newer;
  4 for Cassandra 3);
- ``CASSANDRA_RECONNECT_MAX_DELAY`` (seconds, 10): the longest pause between a session's
  tries to reach a node it lost, so it serves again at most that long after the node is back;
- ``CASSANDRA_LOG_BUCKET_SIZE``: notification ids per partition of the log (default 100,000), fixed
  for a keyspace by the first process that uses it (a process asking for another size is refused);
- ``CREATE_TABLE``: create the keyspace and tables if missing (default yes).

Nothing connects until the first query, in the process that makes it; see
``eventsourcing_cassandra.datastore``. ``close()`` shuts the session down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from eventsourcing.persistence import InfrastructureFactory, InfrastructureFactoryError
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from eventsourcing_cassandra.datastore import BUCKET_SIZE, CassandraDatastore
from eventsourcing_cassandra.recorders import (
    CassandraAggregateRecorder,
    CassandraApplicationRecorder,
    CassandraProcessRecorder,
    CassandraTrackingRecorder,
)

R = TypeVar("R")
N = TypeVar("N", int, float)


def parse_hosts(value: str) -> tuple[list[str], int]:
    """``"a:9042,b:9042"`` -> ``(["a", "b"], 9042)``; one port for all (the driver's rule)."""
    hosts: list[str] = []
    ports: set[int] = set()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or "]" in port:
            host, port = item, ""
        hosts.append(host.strip("[]"))
        ports.add(int(port) if port else 9042)
    if not hosts:
        msg = f"CASSANDRA_HOSTS={value!r} names no host"
        raise InfrastructureFactoryError(msg)
    if len(ports) != 1:
        msg = f"CASSANDRA_HOSTS={value!r}: every host must use the same CQL port"
        raise InfrastructureFactoryError(msg)
    return hosts, ports.pop()


class CassandraFactory(InfrastructureFactory[CassandraTrackingRecorder]):
    CASSANDRA_HOSTS = "CASSANDRA_HOSTS"
    CASSANDRA_KEYSPACE = "CASSANDRA_KEYSPACE"
    CASSANDRA_REPLICATION = "CASSANDRA_REPLICATION"
    CASSANDRA_USERNAME = "CASSANDRA_USERNAME"
    CASSANDRA_PASSWORD = "CASSANDRA_PASSWORD"  # noqa: S105 - the name of a setting
    CASSANDRA_LOCAL_DC = "CASSANDRA_LOCAL_DC"
    CASSANDRA_CONSISTENCY = "CASSANDRA_CONSISTENCY"
    CASSANDRA_SERIAL_CONSISTENCY = "CASSANDRA_SERIAL_CONSISTENCY"
    CASSANDRA_REQUEST_TIMEOUT = "CASSANDRA_REQUEST_TIMEOUT"
    CASSANDRA_TX_TIMEOUT = "CASSANDRA_TX_TIMEOUT"
    CASSANDRA_COMMIT_TIMEOUT = "CASSANDRA_COMMIT_TIMEOUT"
    CASSANDRA_PROTOCOL_VERSION = "CASSANDRA_PROTOCOL_VERSION"
    CASSANDRA_LOG_BUCKET_SIZE = "CASSANDRA_LOG_BUCKET_SIZE"
    CASSANDRA_RECONNECT_MAX_DELAY = "CASSANDRA_RECONNECT_MAX_DELAY"
    CREATE_TABLE = "CREATE_TABLE"

    #: What ``BankAccounts.store`` (and so ``/health``) reports.
    store_name = "cassandra"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        hosts, port = parse_hosts(self.env.get(self.CASSANDRA_HOSTS) or "127.0.0.1:9042")
        self.application_name = self.env.name or "Application"
        try:
            self.datastore = CassandraDatastore(
                hosts=hosts,
                port=port,
                keyspace=self.env.get(self.CASSANDRA_KEYSPACE) or "eventsourcing",
                replication=self.env.get(self.CASSANDRA_REPLICATION)
                or "{'class': 'SimpleStrategy', 'replication_factor': 1}",
                username=self.env.get(self.CASSANDRA_USERNAME) or "",
                password=self.env.get(self.CASSANDRA_PASSWORD) or "",
                local_dc=self.env.get(self.CASSANDRA_LOCAL_DC) or "",
                consistency=(self.env.get(self.CASSANDRA_CONSISTENCY) or "LOCAL_QUORUM").upper(),
                serial_consistency=(self.env.get(self.CASSANDRA_SERIAL_CONSISTENCY) or "LOCAL_SERIAL").upper(),
                request_timeout=self._seconds(self.CASSANDRA_REQUEST_TIMEOUT, 15.0),
                tx_timeout=self._seconds(self.CASSANDRA_TX_TIMEOUT, 10.0),
                commit_timeout=self._seconds(self.CASSANDRA_COMMIT_TIMEOUT, 30.0),
                protocol_version=self._whole_number(self.CASSANDRA_PROTOCOL_VERSION, 5),
                bucket_size=self._whole_number(self.CASSANDRA_LOG_BUCKET_SIZE, BUCKET_SIZE),
                reconnect_max_delay=self._seconds(self.CASSANDRA_RECONNECT_MAX_DELAY, 10.0),
            )
        except AttributeError as error:  # an unknown consistency level name
            msg = f"invalid Cassandra consistency level: {error}"
            raise InfrastructureFactoryError(msg) from None
        self._tables_created = False

    def _seconds(self, key: str, default: float) -> float:
        return self._number(key, default, float, "a number of seconds")

    def _whole_number(self, key: str, default: int) -> int:
        return self._number(key, default, int, "a whole number")

    def _number(self, key: str, default: N, convert: Callable[[str], N], what: str) -> N:
        value = (self.env.get(key) or "").strip()
        if not value:
            return default
        try:
            return convert(value)
        except ValueError:
            msg = f"{key}={value!r} must be {what}"
            raise InfrastructureFactoryError(msg) from None

    def _create_tables(self) -> None:
        if self._tables_created or not strtobool(self.env.get(self.CREATE_TABLE) or "yes"):
            return
        self.datastore.create_tables()
        self._tables_created = True

    def aggregate_recorder(self, purpose: str = "events") -> CassandraAggregateRecorder:
        if purpose not in ("events", "snapshots"):
            msg = f"no table for {purpose!r} records; expected 'events' or 'snapshots'"
            raise InfrastructureFactoryError(msg)
        self._create_tables()
        return CassandraAggregateRecorder(self.datastore, self.application_name, table=purpose)

    def application_recorder(self) -> CassandraApplicationRecorder:
        recorder_class = self._recorder_class(self.APPLICATION_RECORDER_TOPIC, CassandraApplicationRecorder)
        self._create_tables()
        return recorder_class(self.datastore, self.application_name)

    def tracking_recorder(
        self, tracking_recorder_class: type[CassandraTrackingRecorder] | None = None
    ) -> CassandraTrackingRecorder:
        if tracking_recorder_class is None:
            tracking_recorder_class = self._recorder_class(self.TRACKING_RECORDER_TOPIC, CassandraTrackingRecorder)
        self._create_tables()
        return tracking_recorder_class(self.datastore, self.application_name)

    def process_recorder(self) -> CassandraProcessRecorder:
        recorder_class = self._recorder_class(self.PROCESS_RECORDER_TOPIC, CassandraProcessRecorder)
        self._create_tables()
        return recorder_class(self.datastore, self.application_name)

    def _recorder_class(self, setting: str, default: type[R]) -> type[R]:
        topic = self.env.get(setting)
        if not topic:
            return default
        recorder_class: Any = resolve_topic(topic)
        if not (isinstance(recorder_class, type) and issubclass(recorder_class, default)):
            msg = f"{setting}={topic!r} must name a subclass of {default.__qualname__}"
            raise InfrastructureFactoryError(msg)
        return recorder_class

    def close(self) -> None:
        """Shut down this process's session (the application's ``close()`` calls this)."""
        self.datastore.close()


Factory = CassandraFactory
