"""What a Django user on Cassandra would keep instead of events: the balance in a row.

One driver session per process, opened after the fork (``wsgi.py``) with the
store's execution profile (token-aware, ``LOCAL_QUORUM``, ``LOCAL_SERIAL``,
protocol 5), as the recipe's application opens its own. See the views for
why a deposit is a lightweight transaction and not a ``counter``.
"""

from __future__ import annotations

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement
from django.conf import settings

from eventsourcing_cassandra.factory import parse_hosts

COLUMNS = ("id", "full_name", "email_address", "balance", "overdraft_limit", "is_closed", "version")
CQL = {
    "insert": "INSERT INTO {keyspace}.accounts ({columns}) VALUES (?, ?, ?, 0, 0, false, 1)",
    "select": "SELECT {columns} FROM {keyspace}.accounts WHERE id = ?",
    "deposit": "UPDATE {keyspace}.accounts SET balance = ?, version = ? WHERE id = ? IF version = ?",
}


def connect() -> Cluster:
    hosts, port = parse_hosts(settings.CASSANDRA_HOSTS)
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=15.0,
    )
    return Cluster(hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, protocol_version=5)


def create_schema() -> None:
    """The keyspace and table (``manage.py create_ledger``); then disconnect."""
    keyspace = settings.CASSANDRA_KEYSPACE
    cluster = connect()
    try:
        session = cluster.connect()
        replication = settings.CASSANDRA_REPLICATION
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}", timeout=120)
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {keyspace}.accounts (id uuid PRIMARY KEY, full_name text, "
            "email_address text, balance bigint, overdraft_limit bigint, is_closed boolean, version int)",
            timeout=120,
        )
    finally:
        cluster.shutdown()


class Ledger:
    """This process's session and prepared statements."""

    def __init__(self) -> None:
        self.cluster = connect()
        self.session: Session = self.cluster.connect()
        names = {"keyspace": settings.CASSANDRA_KEYSPACE, "columns": ", ".join(COLUMNS)}
        self.statements: dict[str, PreparedStatement] = {
            name: self.session.prepare(cql.format(**names)) for name, cql in CQL.items()
        }

    def close(self) -> None:
        self.cluster.shutdown()


_ledger: Ledger | None = None


def init_ledger() -> Ledger:
    global _ledger
    _ledger = Ledger()
    return _ledger


def ledger() -> Ledger:
    """This process's ledger; constructed on first use if no hook did it (``runserver``)."""
    return _ledger or init_ledger()


def close_ledger() -> None:
    global _ledger
    if _ledger is not None:
        _ledger.close()
        _ledger = None
