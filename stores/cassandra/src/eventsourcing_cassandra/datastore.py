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
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
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
#: ``application_log``: one partition per application holding, as clustering
#: rows, the notification log (kind 0, by notification id), transaction
#: decisions (kind 1, by txid) and tracking positions (kind 2, by upstream
#: application name), with the last notification id issued in the static
#: column ``head``. Being one partition, all of it can change in one
#: lightweight transaction: that is what makes a commit atomic.
TABLES = """
CREATE TABLE IF NOT EXISTS {keyspace}.{table} (
    application_name text,
    originator_id uuid,
    originator_version bigint,
    topic text,
    state blob,
    txid timeuuid,
    committed boolean,
    created_at timestamp,
    PRIMARY KEY ((application_name, originator_id), originator_version)
) WITH CLUSTERING ORDER BY (originator_version ASC)
"""
LOG_TABLE = """
CREATE TABLE IF NOT EXISTS {keyspace}.application_log (
    application_name text,
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
    first_id bigint,
    count int,
    tracking_id bigint,
    PRIMARY KEY ((application_name), kind, position, key)
) WITH CLUSTERING ORDER BY (kind ASC, position ASC, key ASC)
"""

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

    def create_tables(self, tables: Sequence[str] = ("events", "snapshots")) -> None:
        """Create the keyspace (if missing) and the tables. Schema changes in
        Cassandra should come from one process at a time: do it once, before
        workers start, and start them with ``CREATE_TABLE=n``."""
        session = self.session()
        with eventsourcing_errors():
            session.execute(
                f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = {self.replication}",
                timeout=120,
            )
            for table in tables:
                session.execute(TABLES.format(keyspace=self.keyspace, table=table), timeout=120)
            session.execute(LOG_TABLE.format(keyspace=self.keyspace), timeout=120)
