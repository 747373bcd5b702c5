"""Baseline for the Flask + Cassandra recipe: Flask and cassandra-driver on an ordinary ``accounts`` table.

What a Flask user on Cassandra would write instead of event sourcing: the
same routes and JSON, the balance kept in a row. A deposit is Cassandra's
way to change a row exactly once under concurrent writers, a lightweight
transaction: read the row, then ``UPDATE ... SET balance = ?, version = ?
IF version = <read>``, read and try again if another request won the race
(409 if it keeps losing). A ``counter`` column would take one round trip and
no Paxos, but counters cannot sit beside the account's other columns, cannot
say what the balance became, are not idempotent (a timed-out increment that
the client retries may count twice) and cannot refuse a withdrawal: not a
balance anyone keeps. A read is one ``SELECT``. No audit row: the recipe
writes none.

As in the recipe: the master creates the keyspace and table, then shuts its
``Cluster`` down before the workers fork; each worker opens its own session
right after the fork (uWSGI's ``@postfork``) with the store's execution
profile (token-aware, ``LOCAL_QUORUM``, ``LOCAL_SERIAL``, protocol 5) and
closes it at exit. Settings: ``CASSANDRA_HOSTS``, ``CASSANDRA_KEYSPACE``.
Served with the recipe's own uwsgi.ini (``module = wsgi:app``).
"""

from __future__ import annotations

import atexit
import os
import uuid
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement
from flask import Flask, request

from bankaccounts.domain import AccountNotFoundError, BankAccountsError
from bankaccounts.retry import ConflictUnresolvedError
from bankaccounts.web import MAX_BODY_BYTES, error_json, parse_account_id, parse_json_object, status_for
from eventsourcing_cassandra.factory import parse_hosts

HOSTS, PORT = parse_hosts(os.environ.get("CASSANDRA_HOSTS") or "127.0.0.1:9042")
KEYSPACE = os.environ.get("CASSANDRA_KEYSPACE") or "ledger"
REPLICATION = os.environ.get("CASSANDRA_REPLICATION") or "{'class': 'SimpleStrategy', 'replication_factor': 1}"
COLUMNS = ("id", "full_name", "email_address", "balance", "overdraft_limit", "is_closed", "version")
#: Attempts at a deposit's compare-and-set before answering 409.
ATTEMPTS = 100

CQL = {
    "insert": "INSERT INTO {keyspace}.accounts ({columns}) VALUES (?, ?, ?, 0, 0, false, 1)",
    "select": "SELECT {columns} FROM {keyspace}.accounts WHERE id = ?",
    "deposit": "UPDATE {keyspace}.accounts SET balance = ?, version = ? WHERE id = ? IF version = ?",
}


def connect() -> Cluster:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=15.0,
    )
    return Cluster(HOSTS, port=PORT, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, protocol_version=5)


def create_schema() -> None:
    """The keyspace and table, once, before the workers fork; then disconnect."""
    cluster = connect()
    try:
        session = cluster.connect()
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = {REPLICATION}", timeout=120)
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.accounts (id uuid PRIMARY KEY, full_name text, "
            "email_address text, balance bigint, overdraft_limit bigint, is_closed boolean, version int)",
            timeout=120,
        )
    finally:
        cluster.shutdown()


class Ledger:
    """This worker's session and prepared statements."""

    def __init__(self) -> None:
        self.cluster = connect()
        self.session: Session = self.cluster.connect()
        names = {"keyspace": KEYSPACE, "columns": ", ".join(COLUMNS)}
        self.statements: dict[str, PreparedStatement] = {
            name: self.session.prepare(cql.format(**names)) for name, cql in CQL.items()
        }

    def close(self) -> None:
        self.cluster.shutdown()


ledger: Ledger | None = None


def start_worker() -> None:
    global ledger
    ledger = Ledger()
    atexit.register(ledger.close)  # registered in the worker, so only it runs it


def statements() -> tuple[Session, dict[str, PreparedStatement]]:
    if ledger is None:  # the development server, or a server without the hook
        start_worker()
    assert ledger is not None
    return ledger.session, ledger.statements


def as_json(row: Any) -> dict[str, Any]:
    return {**row._asdict(), "id": str(row.id)}


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}

    @app.post("/accounts")
    def open_account() -> tuple[dict[str, Any], int]:
        fields = parse_json_object(request.get_data(cache=False), request.headers.get("Content-Type"))
        session, cql = statements()
        account_id, full_name, email = uuid.uuid4(), fields.string("full_name"), fields.string("email_address")
        session.execute(cql["insert"], (account_id, full_name, email))
        account = {"id": str(account_id), "full_name": full_name, "email_address": email}
        return {**account, "balance": 0, "overdraft_limit": 0, "is_closed": False, "version": 1}, 201

    @app.get("/accounts/<account_id>")
    def get_account(account_id: str) -> dict[str, Any]:
        session, cql = statements()
        row = session.execute(cql["select"], (parse_account_id(account_id),)).one()
        if row is None:
            raise AccountNotFoundError(account_id)
        return as_json(row)

    @app.post("/accounts/<account_id>/deposit")
    def deposit(account_id: str) -> dict[str, Any]:
        account_uuid, amount = (
            parse_account_id(account_id),
            parse_json_object(request.get_data(), request.headers.get("Content-Type")).integer("amount"),
        )
        session, cql = statements()
        for _ in range(ATTEMPTS):
            row = session.execute(cql["select"], (account_uuid,)).one()
            if row is None:
                raise AccountNotFoundError(account_id)
            balance, version = row.balance + amount, row.version + 1
            if session.execute(cql["deposit"], (balance, version, account_uuid, row.version)).was_applied:
                return {**as_json(row), "balance": balance, "version": version}
        msg = f"deposit to {account_id} lost the race {ATTEMPTS} times"
        raise ConflictUnresolvedError(msg)

    @app.errorhandler(BankAccountsError)
    def domain_error(error: BankAccountsError) -> tuple[dict[str, str], int]:
        return error_json(str(error)), status_for(error)

    return app


try:
    import uwsgi
    from uwsgidecorators import postfork
except ImportError:  # not running under uWSGI
    uwsgi = None

if uwsgi is not None and uwsgi.worker_id() != 0:  # lazy-apps: one worker at a time changes the schema
    uwsgi.lock()
    try:
        create_schema()
    finally:
        uwsgi.unlock()
    start_worker()
else:
    create_schema()
    if uwsgi is not None:
        postfork(start_worker)

app = create_app()
