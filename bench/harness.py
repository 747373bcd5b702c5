"""The machinery every benchmark uses: settings, progress, wrk, servers, memory, timing.

Servers are the test kit's ``ServerProcess`` (``cookbook_testing.servers``):
the recipe's own ``uwsgi.ini`` (or, for an ASGI recipe, its own server
files), started as its README says, ready when ``/health`` answers and every
worker is up. Everything listens on loopback
only, and every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bankaccounts.web import RETRY_AFTER_SECONDS
from cookbook_testing.http import HTTPClient, Response
from cookbook_testing.servers import ServerProcess
from cookbook_testing.standalone import until_not_503

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RECIPES = ROOT / "recipes"
BASELINES = BENCH / "baselines"
WRK_SCRIPT = BENCH / "wrk" / "requests.lua"

#: Environment variables that change what a server measures; never inherited.
ISOLATED_ENV = (
    "DATABASE_URL",
    "IS_SNAPSHOTTING_ENABLED",
    "AGGREGATE_CACHE_MAXSIZE",
    "WEB_CONCURRENCY",
    "PORT",
    "PERSISTENCE_MODULE",
    "CREATE_TABLE",
    "CASSANDRA_HOSTS",
    "CASSANDRA_KEYSPACE",
    "CASSANDRA_REPLICATION",
    "CASSANDRA_USERNAME",
    "CASSANDRA_PASSWORD",
    "CASSANDRA_LOCAL_DC",
    "CASSANDRA_CONSISTENCY",
    "CASSANDRA_SERIAL_CONSISTENCY",
    "CASSANDRA_REQUEST_TIMEOUT",
    "AGGREGATE_LOCKS",
    "REQUEST_TIMEOUT",
    "THREADS",
)


class BenchError(RuntimeError):
    """A benchmark could not run, or measured nonsense; the message says why."""


def run_python(cwd: Path, args: Sequence[str], env: Mapping[str, str], what: str, timeout: float = 300) -> str:
    """``python ARGS`` in ``cwd``, with ``env`` over this process's environment; its output.
    A script that fails stops the benchmark, with the end of what it printed."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        msg = f"{what}: python {' '.join(args[:2])} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        raise BenchError(msg)
    return result.stdout


@dataclass(frozen=True)
class Settings:
    """How long and how big. ``quick`` exercises every code path in a few minutes."""

    quick: bool
    duration: float  # seconds of load per wrk measurement
    warmup: float  # seconds of load, discarded, before measuring a server
    rounds: int  # measurements of each pair, back to back (recipe, baseline, recipe, ...)
    #: Whether each web server gets ``warmup`` seconds of load before its first round. A smoke
    #: run's numbers mean nothing, and the warm-up is the measurement's own wrk call: skipping it
    #: takes a third of the smoke run's load off cores CI's tests share.
    warm_up_servers: bool = True
    connections: int = 16  # wrk's concurrent connections: 4 per worker
    wrk_threads: int = 1  # one thread: the machine has 2 cores, and wrk needs few
    workers: int = 4
    write_accounts: int = 1000  # deposits go to a random one of these
    read_accounts: int = 100  # reads go to a random one of these ...
    read_account_events: int = 5  # ... each with this many events (opened, then 4 deposits)
    long_sizes: tuple[int, ...] = (1000, 10000)
    first_request_repeats: int = 3
    celery_tasks: int = 1000
    celery_accounts: int = 100
    rq_jobs: int = 1000  # deposits per batch for RQ's SimpleWorker, as for Celery ...
    rq_fork_jobs: int = 300  # ... for its forking Worker (a fork and an application per job) ...
    rq_spawn_jobs: int = 30  # ... and for SpawnWorker (a new interpreter per job)
    rq_accounts: int = 100
    lag_seconds: float = 20.0  # the web recipe's load while the projection follows
    #: A full run takes about an hour on 2 cores (the Cassandra ring alone about 12 minutes):
    #: the deadline stops a run that hangs, not one that is merely slow.
    deadline_minutes: float = 90.0

    @classmethod
    def full(cls) -> Settings:
        # Four short rounds rather than two long ones: on a shared machine the
        # median of four back-to-back ratios shrugs off a burst of someone else's load.
        return cls(quick=False, duration=5.0, warmup=2.0, rounds=4)

    @classmethod
    def smoke(cls) -> Settings:
        return cls(
            quick=True,
            duration=1.0,
            warmup=1.0,
            rounds=1,
            warm_up_servers=False,
            # Two workers: the code paths of four, for half the start-up (the imports of
            # every worker of every server); wrk's connections likewise, 4 per worker.
            connections=8,
            workers=2,
            write_accounts=20,
            read_accounts=5,
            read_account_events=3,
            long_sizes=(50, 200),
            first_request_repeats=1,
            celery_tasks=30,
            celery_accounts=5,
            rq_jobs=20,
            rq_fork_jobs=10,
            rq_spawn_jobs=4,
            rq_accounts=5,
            lag_seconds=2.0,
            # About 4 minutes on a quiet machine; CI runs it beside the whole
            # matrix, on cores that are busy throughout: about twice that there.
            deadline_minutes=20.0,
        )


class Progress:
    """One line per step, with elapsed time; the run stops past its deadline."""

    def __init__(self, deadline_minutes: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + deadline_minutes * 60
        self.section = ""

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:2d}m{seconds % 60:02d}s"

    def start_section(self, name: str) -> None:
        self.section = name
        print(f"\n[{self.elapsed()}] == {name}", flush=True)

    def step(self, message: str) -> None:
        if time.monotonic() > self.deadline:
            minutes = (self.deadline - self.started) / 60
            msg = f"the benchmark ran past its deadline of {minutes:.0f} minutes (at: {self.section}: {message})"
            raise BenchError(msg)
        print(f"[{self.elapsed()}]    {message}", flush=True)


# --- the load generator ---------------------------------------------------------


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        msg = (
            "wrk, the load generator, is not installed. On Debian: apt-get install -y wrk "
            "(CI: add it to .ci/install-debian-packages)"
        )
        raise BenchError(msg)
    return path


def wrk_version() -> str:
    result = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (result.stdout or result.stderr).splitlines()[0].strip()


@dataclass
class Load:
    """One wrk measurement: requests per second and latency, in milliseconds."""

    rps: float
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx/3xx answers, timeouts, failed connects and writes
    read_errors_beyond_closes: int
    load_average: float  # the machine's 1-minute load average when it started
    statuses: dict[str, int] = field(default_factory=dict)  # answers by status, where the script counts them

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_wrk(
    port: int,
    mode: str,
    seconds: float,
    settings: Settings,
    ids_file: Path | None = None,
    path: str = "/health",
    connections: int | None = None,
    script: Path = WRK_SCRIPT,
    *,
    close_connections: bool = False,
) -> Load:
    """Drive ``127.0.0.1:port`` for ``seconds``; ``mode`` is deposit, read or get (of ``path``);
    with ``close_connections``, each request on a connection of its own.

    uWSGI's ``http-socket`` closes the connection after every response, and wrk
    counts each close as a read error before it reconnects; so read errors are
    expected, one per request, and only those beyond that count as failures.
    """
    connections = connections or settings.connections
    load_average = os.getloadavg()[0]
    command = [
        wrk_path(),
        f"-t{settings.wrk_threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",  # whole seconds: wrk takes no fractions
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
        "--",
        mode,
    ]
    if ids_file is not None:
        command.append(str(ids_file))
    if close_connections:
        command.append("close")
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        msg = f"wrk failed ({result.returncode}): {result.stdout[-2000:]} {result.stderr[-2000:]}"
        raise BenchError(msg)
    report = json.loads(lines[-1])
    measured = report["duration_us"] / 1e6
    requests = int(report["requests"])
    errors = sum(int(report[key]) for key in ("connect", "write", "status", "timeout"))
    return Load(
        rps=requests / measured if measured else 0.0,
        requests=requests,
        seconds=round(measured, 3),
        p50_ms=report["p50"] / 1000,
        p90_ms=report["p90"] / 1000,
        p99_ms=report["p99"] / 1000,
        max_ms=report["max"] / 1000,
        errors=errors,
        read_errors_beyond_closes=max(0, int(report["read"]) - requests - connections),
        load_average=round(load_average, 2),
        statuses={str(status): int(count) for status, count in report.get("statuses", {}).items()},
    )


def check_load(load: Load, what: str) -> None:
    """A measurement with failed requests measures failures: refuse it."""
    failed = load.errors + load.read_errors_beyond_closes
    if load.requests == 0 or failed > max(2, load.requests // 100):
        msg = f"{what}: {failed} failed requests of {load.requests} (see the server log)"
        raise BenchError(msg)


# --- servers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Something a server serves: a recipe, or a baseline app, always with a recipe's own server config."""

    name: str  # the recipe it belongs to, e.g. "flask-sqlalchemy"
    role: str  # "recipe", "baseline" or "generator"
    app_dir: Path  # the server's working folder: where its wsgi.py (asgi.py) is
    uwsgi_ini: Path | None  # under uWSGI: a recipe's uwsgi.ini, served the same way
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Target, Mapping[str, str]], None] | None = None  # e.g. Django's migrate, before serving
    # The server (cookbook_testing.servers.COMMANDS); other than uWSGI, it is started
    # from app_dir with the config file its command names, which must be the recipe's.
    server: str = "uwsgi"

    @property
    def label(self) -> str:
        return f"{self.name} {self.role}" + ("" if self.server == "uwsgi" else f" under {self.server}")


def isolate_environment() -> None:
    """Servers inherit this process's environment: drop what would change what they measure."""
    for name in ISOLATED_ENV:
        os.environ.pop(name, None)


class BenchServer(ServerProcess):
    """A target under its server, from its folder, with the recipe's config, on the
    store that ``store`` names (``DATABASE_URL``, or ``CASSANDRA_HOSTS`` and
    ``CASSANDRA_KEYSPACE``)."""

    def __init__(
        self, target: Target, store: Mapping[str, str], *, workers: int, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            target.server,
            target.app_dir,
            env={**target.env, **store, **(env or {})},
            workers=workers,
            args=["--ini", str(target.uwsgi_ini)] if target.server == "uwsgi" else None,
        )
        self.target = target

    def failure(self, error: Exception) -> BenchError:
        tail = self.log()[-3000:]
        return BenchError(f"{self.target.label}: {error}\n--- server log (end) ---\n{tail}")


@contextlib.contextmanager
def serving(
    target: Target, store: Mapping[str, str], *, workers: int, env: dict[str, str] | None = None
) -> Iterator[BenchServer]:
    server = BenchServer(target, store, workers=workers, env=env)
    try:
        server.start(timeout=120)
    except AssertionError as error:
        failure = server.failure(error)
        server.close()
        raise failure from None
    try:
        yield server
    finally:
        server.close()


def parallel(function: Callable[[int], Any], count: int, threads: int = 8) -> list[Any]:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(function, range(count)))


#: A set-up request answered 503 is sent again (same ``Idempotency-Key``) this many times,
#: ``RETRY_AFTER_SECONDS`` apart (what the servers' ``Retry-After`` asks): a store just started
#: (a ring electing its first Paxos leaders, a pool still connecting) may refuse the first
#: writes for a few seconds.
SET_UP_TRIES = 15


def _patiently(client: HTTPClient, path: str, body: dict[str, Any], expected: int) -> Response:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    send = functools.partial(client.post, path, json=body, headers=key)
    response = until_not_503(send, tries=SET_UP_TRIES, pause=RETRY_AFTER_SECONDS)[-1]
    if response.status != expected:
        msg = f"POST {path} answered {response.status}: {response.body[:300]!r}"
        raise BenchError(msg)
    return response


def open_accounts(client: HTTPClient, count: int, deposits_each: int = 0) -> list[str]:
    """Open ``count`` accounts over HTTP, each then given ``deposits_each`` deposits; return their ids.
    A request answered 503 is sent again with its key, ``SET_UP_TRIES`` times at most."""

    def open_one(number: int) -> str:
        person = {"full_name": f"Bench {number}", "email_address": f"b{number}@example.com"}
        account_id = str(_patiently(client, "/accounts", person, 201).json["id"])
        for _ in range(deposits_each):
            _patiently(client, f"/accounts/{account_id}/deposit", {"amount": 100}, 200)
        return account_id

    return parallel(open_one, count)


def write_ids(path: Path, ids: Sequence[str]) -> Path:
    path.write_text("\n".join(ids) + "\n")
    return path


# --- memory and start-up ------------------------------------------------------------


def worker_memory(server: ServerProcess) -> dict[str, Any]:
    """RSS, PSS and USS of each worker, in MiB: RSS counts pages shared with the master."""
    workers = []
    for pid in sorted(server.worker_pids()):
        with contextlib.suppress(psutil.NoSuchProcess):
            info = psutil.Process(pid).memory_full_info()
            workers.append({"pid": pid, "rss": info.rss / 2**20, "pss": info.pss / 2**20, "uss": info.uss / 2**20})
    if not workers:
        msg = "no workers to measure"
        raise BenchError(msg)
    median = {key: statistics.median(worker[key] for worker in workers) for key in ("rss", "pss", "uss")}
    master = psutil.Process(server.pid).memory_info().rss / 2**20
    return {"workers": workers, "median": median, "master_rss": master}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def boot_seconds() -> float:
    """Now, on the clock that /proc/<pid>/stat's start times use."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def process_start(pid: int) -> float:
    """When ``pid`` was forked, in boot-clock seconds (to the kernel's tick, 1/100 s)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[19]) / CLOCK_TICKS


class FirstRequestServer(BenchServer):
    """One worker; ready when a real request (a read of an account) has been answered.

    The polls connect as soon as the master has bound its socket, long before
    it forks, so the first successful one waits in the listen queue and is
    answered the moment the new worker can serve it.
    """

    def __init__(self, target: Target, store: Mapping[str, str], path: str) -> None:
        super().__init__(target, store, workers=1)
        self.path = path
        self.sent_at: float | None = None
        self.answered_at: float | None = None

    def is_ready(self) -> bool:
        client = HTTPClient("127.0.0.1", self.port, timeout=120)
        sent_at = boot_seconds()
        try:
            response = client.get(self.path)
        except OSError:
            return False
        if response.status != 200:
            msg = f"GET {self.path} answered {response.status}: {response.body[:300]!r}"
            raise BenchError(msg)
        self.sent_at, self.answered_at = sent_at, boot_seconds()
        return True


def fork_to_first_request(target: Target, store: Mapping[str, str], path: str) -> dict[str, float]:
    """Start the target with one worker; seconds from that worker's fork to its first answer."""
    server = FirstRequestServer(target, store, path)
    launched = time.monotonic()
    try:
        server.start(timeout=120)
    except AssertionError as error:
        failure = server.failure(error)
        server.close()
        raise failure from None
    try:
        started_to_answer = time.monotonic() - launched
        (worker,) = server.worker_pids()
        forked_at = process_start(worker)
        assert server.sent_at is not None and server.answered_at is not None
        return {
            "fork_to_first_request_s": round(server.answered_at - forked_at, 3),
            "request_queued_before_fork": server.sent_at <= forked_at + 0.01,
            "server_start_to_first_request_s": round(started_to_answer, 3),
        }
    finally:
        server.close()


# --- statistics -------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how far repeated measurements of one thing disagree."""
    if len(values) < 2:
        return 0.0
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def python_description() -> str:
    return f"{sys.implementation.name} {sys.version.split()[0]}"


# --- Cassandra ------------------------------------------------------------------------

#: The node's settings that bear on the numbers, as its generated cassandra.yaml has them.
CASSANDRA_SETTINGS = (
    "commitlog_sync",
    "commitlog_sync_period",
    "concurrent_writes",
    "paxos_variant",
    "memtable_heap_space",
)


def cassandra_cache_dir() -> Path:
    """Maven's cache of Cassandra's jars: ``CASSANDRA_CACHE_DIR``, or the stores/cassandra/ package's
    ``.cache`` (the one its tests and the Cassandra recipes' tests warm up)."""
    configured = os.environ.get("CASSANDRA_CACHE_DIR", "").strip()
    return Path(configured) if configured else ROOT / "stores" / "cassandra" / ".cache"


class CassandraServer:
    """Cassandra 5.0 (the test kit's ``cassandra_testing.node``: Java 17, jars from Maven
    Central) on loopback: one node, or a ring of ``nodes`` (127.0.0.1, .2, .3) whose
    keyspaces keep a replica on each of three nodes; started on first use, stopped with
    ``stack``."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        progress: Progress,
        nodes: int = 1,
        quick_start: bool = False,
        audit_keyspaces: tuple[str, ...] = (),
    ) -> None:
        self.stack = stack
        self.progress = progress
        self.nodes = nodes
        #: Keyspaces whose requests one node logs (``CassandraNode.audit_keyspaces``): statements.py's.
        self.audit_keyspaces = audit_keyspaces
        #: Java's first compiler only (``CassandraNode.quick_start``): for a smoke run's few
        #: queries; a measurement needs the optimising compiler, on one node and on a ring.
        self.quick_start = quick_start
        self.node: Any = None  # the node, or the ring: hosts, port

    def start(self) -> Any:
        if self.node is not None:
            return self.node
        from cassandra_testing.node import CassandraNode, CassandraRing

        what = "a Cassandra node" if self.nodes == 1 else f"a ring of {self.nodes} Cassandra nodes"
        self.progress.step(f"starting {what} (jars cached in {cassandra_cache_dir()})")
        started = time.monotonic()
        if self.nodes == 1:
            node: Any = CassandraNode(
                cassandra_cache_dir(),
                start_timeout=300,
                quick_start=self.quick_start,
                audit_keyspaces=self.audit_keyspaces,
            )
        else:
            node = CassandraRing(
                cassandra_cache_dir(), size=self.nodes, start_timeout=300, quick_start=self.quick_start
            )
        try:
            node.start()
        except Exception as error:
            tail = "\n".join(self.members(node)[0].log().splitlines()[-30:])
            node.stop()
            msg = f"{what} did not start: {error}\n{tail}"
            raise BenchError(msg) from None
        self.stack.callback(node.stop)
        self.node = node
        self.progress.step(f"{what} answering on {node.hosts}:{node.port} after {time.monotonic() - started:.0f} s")
        return node

    def members(self, node: Any) -> list[Any]:
        """The JVMs of ``node`` (what ``start`` made): the node alone, or each of the ring's."""
        return [node] if self.nodes == 1 else list(node.nodes)

    @property
    def pids(self) -> list[int]:
        """The JVMs' process ids: the node's, or each of the ring's."""
        return [member.pid for member in self.members(self.start())]

    @property
    def log_path(self) -> Path:
        """One node's log (with its audit log's lines: ``audit_keyspaces``)."""
        if self.nodes != 1:
            msg = "a ring's nodes have a log each: log_path is one node's"
            raise BenchError(msg)
        return Path(self.start().log_path)

    @property
    def contact(self) -> tuple[list[str], int]:
        node = self.start()
        return node.hosts, node.port

    @staticmethod
    def keyspace(name: str) -> str:
        """The keyspace ``store(name)`` points a server at."""
        return re.sub(r"[^a-z0-9]", "_", name.lower())

    def store(self, name: str) -> dict[str, str]:
        """A keyspace of its own for ``name``, as the settings that point a server at it."""
        hosts, port = self.contact
        keyspace = self.keyspace(name)
        store = {"CASSANDRA_HOSTS": ",".join(f"{host}:{port}" for host in hosts), "CASSANDRA_KEYSPACE": keyspace}
        if self.replication is not None:  # read by the store and by the baselines when they create it
            store["CASSANDRA_REPLICATION"] = self.replication
        return store

    @property
    def replication(self) -> str | None:
        """The keyspaces' replication on a ring (a replica on each of 3 nodes); None on one node."""
        if self.nodes == 1:
            return None
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {min(3, self.nodes)}}}"

    def description(self) -> dict[str, Any]:
        """What the page says about the node: its version, heap and the settings that matter."""
        if self.node is None:
            return {}
        from cassandra.cluster import Cluster

        cluster = Cluster(self.node.hosts, port=self.node.port, protocol_version=5)
        try:
            version = cluster.connect().execute("SELECT release_version FROM system.local").one()[0]
        finally:
            cluster.shutdown()
        config = (self.members(self.node)[0].root / "conf" / "cassandra.yaml").read_text()
        settings = {
            key: value.strip()
            for key, value in re.findall(r"^(\w+): *(.*)$", config, flags=re.MULTILINE)
            if key in CASSANDRA_SETTINGS
        }
        description = {"version": str(version), "heap": self.node.heap, "nodes": self.nodes, **settings}
        description["jit"] = "C1 only" if self.quick_start else "tiered (C1, C2)"
        if self.replication is not None:
            description["replication"] = self.replication
        return description
