"""The connection to Cassandra: one driver ``Cluster`` per process, opened on first use.

The DataStax driver's ``Cluster`` owns threads and sockets, which a forked
child does not get in working order. So nothing connects when the datastore
is constructed: the first query opens the session in the process that runs
it, and a datastore used in another process than the one that connected
(a forked worker that inherited it) drops the inherited objects, without
touching their sockets, and connects afresh. ``close()`` shuts the session
down; the next query would open a new one.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from cassandra import (
    ConsistencyLevel,
    InvalidRequest,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unavailable,
    WriteFailure,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, ResultSet, Session
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.protocol import ConfigurationException, SyntaxException
from cassandra.query import PreparedStatement, Statement
from eventsourcing import persistence

#: The tables, shared by every application in the keyspace; ``application_name`` keeps them apart.
#:
#: ``events`` (and ``snapshots``): one partition per aggregate, rows clustered by
#: version. ``txid`` names the transaction that wrote a row when the write spanned
#: partitions or fed the notification log; such a row counts only once its
#: transaction is committed (``committed`` caches that fact in the row).
#:
#: ``log_buckets``: the application's log, in partitions of ``bucket_size``
#: notification ids each (bucket ``id // bucket_size``), so that no partition
#: grows without bound. A bucket holds, as clustering rows, its notifications
#: (kind 0, by id), the decisions of the transactions that began while it was
#: the log's newest or moved there (kind 1, by txid) and, once it is the
#: newest, the tracking positions (kind 2, by upstream application name), with
#: the last notification id committed in it in the static column ``head``. A
#: commit is one lightweight transaction in one bucket: that makes it atomic.
#: (``application_log``, one partition per application, is the first version
#: of this table: ``eventsourcing_cassandra.migrate`` copies it into buckets.)
TABLES = """
CREATE TABLE IF NOT EXISTS {keyspace}.{table} (
    application_name text,
    originator_id uuid,
    originator_version bigint,
    topic text,
    state blob,
    txid timeuuid,
    log_bucket bigint,
    committed boolean,
    created_at timestamp,
    PRIMARY KEY ((application_name, originator_id), originator_version)
) WITH CLUSTERING ORDER BY (originator_version ASC)
"""
LOG_TABLE = """
CREATE TABLE IF NOT EXISTS {keyspace}.log_buckets (
    application_name text,
    bucket bigint,
    kind tinyint,
    position bigint,
    key text,
    head bigint static,
    originator_id uuid,
    originator_version bigint,
    topic text,
    state blob,
    txid timeuuid,
    status text,
    moved_to bigint,
    first_id bigint,
    count int,
    tracking_id bigint,
    PRIMARY KEY ((application_name, bucket), kind, position, key)
) WITH CLUSTERING ORDER BY (kind ASC, position ASC, key ASC)
"""
#: Settings fixed for the life of a keyspace (the log's bucket size): the first process to use it records them.
SETTINGS_TABLE = """
CREATE TABLE IF NOT EXISTS {keyspace}.store_settings (
    name text PRIMARY KEY,
    value bigint
)
"""
#: The first version's log table, and the setting ``migrate`` records once it has copied it.
FIRST_VERSION_LOG = "application_log"
MIGRATED = "log_migrated_from_application_log"
#: The setting that records the keyspace's bucket size.
BUCKET_SIZE_SETTING = "log_bucket_size"
#: Notification ids per bucket of the log, unless ``CASSANDRA_LOG_BUCKET_SIZE`` says otherwise for a new keyspace.
BUCKET_SIZE = 100_000

#: Driver errors, most specific first, and ``eventsourcing``'s equivalents.
TRANSLATED_ERRORS: list[tuple[type[BaseException] | tuple[type[BaseException], ...], type[Exception]]] = [
    ((SyntaxException, ConfigurationException), persistence.ProgrammingError),
    (InvalidRequest, persistence.ProgrammingError),
    (
        (NoHostAvailable, OperationTimedOut, ReadTimeout, WriteTimeout, Unavailable, ReadFailure, WriteFailure),
        persistence.OperationalError,
    ),
]


@contextlib.contextmanager
def eventsourcing_errors() -> Iterator[None]:
    """Re-raise the driver's errors as ``eventsourcing.persistence`` errors."""
    try:
        yield
    except persistence.PersistenceError:
        raise
    except Exception as error:
        for driver_errors, translated in TRANSLATED_ERRORS:
            if isinstance(error, driver_errors):
                raise translated(f"{type(error).__name__}: {error}") from error
        raise


def is_unknown_cas_outcome(error: BaseException) -> bool:
    """A lightweight transaction that timed out may or may not have been applied."""
    if isinstance(error, WriteTimeout):
        return True  # write_type CAS: Paxos did not finish in time, or contention
    return isinstance(error, OperationTimedOut)


class CassandraDatastore:
    """Settings and the (lazily opened, per-process) session."""

    def __init__(
        self,
        *,
        hosts: Sequence[str],
        port: int,
        keyspace: str,
        replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        username: str = "",
        password: str = "",
        local_dc: str = "",
        request_timeout: float = 15.0,
        consistency: str = "LOCAL_QUORUM",
        serial_consistency: str = "LOCAL_SERIAL",
        tx_timeout: float = 10.0,
        commit_timeout: float = 30.0,
        protocol_version: int = 5,
        bucket_size: int = BUCKET_SIZE,
        reconnect_max_delay: float = 10.0,
    ) -> None:
        if not keyspace.replace("_", "").isalnum() or not keyspace[0].isalpha():
            msg = f"keyspace {keyspace!r} must be letters, digits and underscores, starting with a letter"
            raise persistence.ProgrammingError(msg)
        self.hosts = list(hosts)
        self.port = port
        self.keyspace = keyspace
        self.replication = replication
        self.username = username
        self.password = password
        self.local_dc = local_dc
        self.request_timeout = request_timeout
        self.consistency = getattr(ConsistencyLevel, consistency)
        self.serial_consistency = getattr(ConsistencyLevel, serial_consistency)
        #: Seconds after which a reader may abort a transaction that neither committed nor aborted.
        self.tx_timeout = tx_timeout
        #: Seconds a writer keeps trying to append its transaction to a contended log.
        self.commit_timeout = commit_timeout
        self.protocol_version = protocol_version
        if reconnect_max_delay <= 0:
            msg = f"the longest pause between reconnections must be more than 0 s, not {reconnect_max_delay}"
            raise persistence.ProgrammingError(msg)
        #: Seconds, at most, between a session's attempts to reach a node it lost.
        self.reconnect_max_delay = reconnect_max_delay
        if bucket_size < 2:
            msg = f"the log's bucket size must be at least 2, not {bucket_size}"
            raise persistence.ProgrammingError(msg)
        #: Notification ids per bucket of the log (what this process asks for; ``bucket_size()`` is the keyspace's).
        self.configured_bucket_size = bucket_size
        self._bucket_size: int | None = None
        #: Per application: the newest bucket of its log seen opened, and the one its
        #: next commit was found to go in (the log only moves on: these may lag, never lead).
        self.opened_buckets: dict[str, int] = {}
        self.commit_buckets: dict[str, int] = {}
        #: Per application and bucket: the head of a bucket that is closed (it never changes again).
        self.closed_heads: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        #: Serialises commits of one application within this process (see ``_commit``).
        self.commit_locks: dict[str, threading.Lock] = {}

    # --- the session ---------------------------------------------------------------

    def ping(self, timeout: float) -> None:
        """Ask the cluster a trivial question (its release version); raise if no answer in ``timeout``."""
        self.session().execute("SELECT release_version FROM system.local", timeout=timeout)

    def reconnection_policy(self) -> ExponentialReconnectionPolicy:
        """How a session tries again to reach a node it lost: at 0.5 s, then twice as long
        each time, up to ``reconnect_max_delay``, for as long as it takes. The driver's
        default waits up to 600 s between tries (after a long outage, a worker could
        serve again ten minutes after the node was back) and gives up after 64 tries
        (some nine hours: a single node's session then never serves again)."""
        return ExponentialReconnectionPolicy(
            base_delay=min(0.5, self.reconnect_max_delay), max_delay=self.reconnect_max_delay, max_attempts=None
        )

    def session(self) -> Session:
        with self._lock:
            if self._session is not None and self._pid == os.getpid():
                return self._session
            # Never connected, closed, or inherited across a fork: the inherited
            # Cluster's threads do not exist here and its sockets are the
            # parent's, so forget it (do not shut it down) and connect anew.
            self._cluster = self._session = None
            self._prepared = {}
            self.commit_locks = {}
            profile = ExecutionProfile(
                load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.local_dc or None)),
                consistency_level=self.consistency,
                serial_consistency_level=self.serial_consistency,
                request_timeout=self.request_timeout,
            )
            auth = PlainTextAuthProvider(self.username, self.password) if self.username else None
            cluster = Cluster(
                self.hosts,
                port=self.port,
                execution_profiles={EXEC_PROFILE_DEFAULT: profile},  # type: ignore[has-type]  # the driver's import cycles hide its type
                auth_provider=auth,
                connect_timeout=self.request_timeout,
                control_connection_timeout=self.request_timeout,
                reconnection_policy=self.reconnection_policy(),
                # Cassandra 4.0 and newer speak v5; saying so spares a failed handshake (and a warning).
                protocol_version=self.protocol_version,
            )
            with eventsourcing_errors():
                try:
                    session: Session = cluster.connect()
                except BaseException:
                    cluster.shutdown()
                    raise
            self._cluster, self._session, self._pid = cluster, session, os.getpid()
            return session

    def close(self) -> None:
        """Shut the session down, if this process opened it."""
        with self._lock:
            cluster, owner = self._cluster, self._pid
            self._cluster = self._session = None
            self._prepared = {}
        if cluster is not None and owner == os.getpid():
            cluster.shutdown()

    @property
    def is_connected(self) -> bool:
        return self._session is not None and self._pid == os.getpid()

    # --- statements ----------------------------------------------------------------

    def prepare(self, cql: str) -> PreparedStatement:
        session = self.session()
        statement = self._prepared.get(cql)
        if statement is None:
            with eventsourcing_errors():
                statement = session.prepare(cql.format(keyspace=self.keyspace))
            self._prepared[cql] = statement
        return statement

    def prepared_statements(self) -> dict[str, PreparedStatement]:
        """The statements this session has prepared, by their CQL (``{keyspace}`` unfilled)."""
        return dict(self._prepared)

    def execute(
        self,
        statement: str | Statement | PreparedStatement,
        params: Sequence[Any] | None = None,
        *,
        serial: bool = False,
    ) -> ResultSet:
        """Run one statement (CQL with ``{keyspace}`` is prepared once); errors translated."""
        if isinstance(statement, str):
            statement = self.prepare(statement)
        bound: Any = statement.bind(params or ()) if isinstance(statement, PreparedStatement) else statement
        if serial:
            bound.consistency_level = self.serial_consistency
        with eventsourcing_errors():
            result: ResultSet = self.session().execute(bound, timeout=self.request_timeout)
            return result

    def execute_raw(
        self, statement: str | Statement | PreparedStatement, params: Sequence[Any] | None = None
    ) -> ResultSet:
        """Like ``execute`` but the driver's own errors propagate (for unknown-outcome handling)."""
        if isinstance(statement, str):
            statement = self.prepare(statement)
        bound: Any = statement.bind(params or ()) if isinstance(statement, PreparedStatement) else statement
        result: ResultSet = self.session().execute(bound, timeout=self.request_timeout)
        return result

    # --- schema --------------------------------------------------------------------

    def create_tables(
        self, tables: Sequence[str] = ("events", "snapshots"), *, check_first_version: bool = True
    ) -> None:
        """Create the keyspace (if missing) and the tables. Schema changes in
        Cassandra should come from one process at a time: do it once, before
        workers start, and start them with ``CREATE_TABLE=n``. A keyspace whose
        log is still in the first version's table is refused (see ``migrate``)."""
        session = self.session()
        with eventsourcing_errors():
            session.execute(
                f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = {self.replication}",
                timeout=120,
            )
            for table in tables:
                session.execute(TABLES.format(keyspace=self.keyspace, table=table), timeout=120)
                self._add_column(table, "log_bucket", "bigint")  # a table made before the log had buckets
            session.execute(LOG_TABLE.format(keyspace=self.keyspace), timeout=120)
            session.execute(SETTINGS_TABLE.format(keyspace=self.keyspace), timeout=120)
            if check_first_version and self.has_table(FIRST_VERSION_LOG) and self.setting(MIGRATED) is None:
                msg = (
                    f"keyspace {self.keyspace} keeps its log in {FIRST_VERSION_LOG}, this store's first version: "
                    f"stop its writers and run python -m eventsourcing_cassandra.migrate --keyspace {self.keyspace}"
                )
                raise persistence.ProgrammingError(msg)
        self.bucket_size()

    def has_table(self, table: str) -> bool:
        rows = self.session().execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
            (self.keyspace, table),
            timeout=self.request_timeout,
        )
        return bool(rows.all())

    def setting(self, name: str) -> int | None:
        result = self.session().execute(
            f"SELECT value FROM {self.keyspace}.store_settings WHERE name = %s",  # noqa: S608 - a checked keyspace name
            (name,),
            timeout=self.request_timeout,
        )
        row = result.one()
        return row.value if row is not None else None

    def record_setting(self, name: str, value: int) -> None:
        self.session().execute(
            f"INSERT INTO {self.keyspace}.store_settings (name, value) VALUES (%s, %s)",  # noqa: S608 - a checked keyspace name
            (name, value),
            timeout=self.request_timeout,
        )

    def _add_column(self, table: str, column: str, cql_type: str) -> None:
        rows = self.session().execute(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
            (self.keyspace, table),
            timeout=self.request_timeout,
        )
        if column not in {row.column_name for row in rows}:
            self.session().execute(f"ALTER TABLE {self.keyspace}.{table} ADD {column} {cql_type}", timeout=120)

    def bucket_size(self) -> int:
        """The keyspace's bucket size: recorded by the first process to ask, then the same for all.
        A process configured for another size is refused, since ids would land in the wrong buckets."""
        if self._bucket_size is None:
            with eventsourcing_errors():
                # A read first: only the keyspace's first process needs the lightweight transaction.
                recorded = self.setting(BUCKET_SIZE_SETTING)
                if recorded is None:
                    result = self.session().execute(
                        f"INSERT INTO {self.keyspace}.store_settings (name, value) "  # noqa: S608 - a checked keyspace name
                        "VALUES (%s, %s) IF NOT EXISTS",
                        (BUCKET_SIZE_SETTING, self.configured_bucket_size),
                        timeout=self.request_timeout,
                    )
                    recorded = self.configured_bucket_size if result.was_applied else result.one().value
            if recorded != self.configured_bucket_size:
                msg = (
                    f"keyspace {self.keyspace} keeps its log in buckets of {recorded} ids, "
                    f"not {self.configured_bucket_size}: set CASSANDRA_LOG_BUCKET_SIZE={recorded}, or leave it unset"
                )
                raise persistence.ProgrammingError(msg)
            self._bucket_size = recorded
        return self._bucket_size
