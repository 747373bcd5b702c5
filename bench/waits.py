"""What the database sessions of a web recipe, and of its baseline, spend their time on under
the deposit load: PostgreSQL's own view of each session (``pg_stat_activity``), sampled.

While ``wrk`` sends deposits to a server (its workers, one session each), a sampler
reads ``pg_stat_activity`` for the server's database every few milliseconds, and counts
each session's state: running a statement, waiting for a lock (the events table's,
taken to keep notification ids in commit order; an account's advisory lock; another
transaction's row), waiting for the commit's WAL flush, idle inside a transaction
(the worker is running Python between two statements, its locks held), or idle
between requests. Each share is of all the sessions' sampled time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import web
from harness import Progress, Settings, open_accounts, run_wrk, serving, write_ids

from bankaccounts.config import DatabaseConfig

#: How often the sampler reads pg_stat_activity (each read takes about a millisecond).
SAMPLE_EVERY = 0.005
#: The states, in the page's order (``category`` names them).
STATES = [
    "running a statement",
    "waiting for the events table's lock",
    "waiting for an account's advisory lock",
    "waiting for another transaction",
    "flushing the WAL at commit",
    "other waits",
    "idle in a transaction",
    "idle between requests",
]
#: Lock waits by ``wait_event`` (PostgreSQL's names): a table lock is a ``relation`` lock.
LOCK_WAITS = {
    "relation": "waiting for the events table's lock",
    "advisory": "waiting for an account's advisory lock",
    "transactionid": "waiting for another transaction",
    "tuple": "waiting for another transaction",
}


def category(state: str | None, wait_type: str | None, wait_event: str | None) -> str:
    """One of STATES for a session's ``state``, ``wait_event_type`` and ``wait_event``."""
    if state == "idle in transaction":
        return "idle in a transaction"
    if state != "active":
        return "idle between requests"
    if wait_type is None:
        return "running a statement"
    if wait_type == "Lock":
        return LOCK_WAITS.get(str(wait_event), "other waits")
    if "WAL" in str(wait_event):
        return "flushing the WAL at commit"
    return "other waits"


def sample(admin_url: str, database: str, stop: threading.Event) -> Counter[str]:
    """Each session's state in ``database``, read every SAMPLE_EVERY seconds until ``stop`` is set."""
    seen: Counter[str] = Counter()
    query = (
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
        "WHERE datname = %s AND backend_type = 'client backend'"
    )
    with psycopg.connect(admin_url, autocommit=True) as connection:
        while not stop.wait(SAMPLE_EVERY):
            for state, wait_type, wait_event in connection.execute(query, (database,), prepare=True):
                seen[category(state, wait_type, wait_event)] += 1
    return seen


def measure(
    recipe: str,
    admin_url: str,
    stores: tuple[Mapping[str, str], Mapping[str, str]],
    settings: Settings,
    progress: Progress,
    workdir: Path,
) -> dict[str, Any]:
    """The shares of STATES of ``recipe``'s sessions and of its baseline's, under the deposit load."""
    server = web.servers_of(recipe)[0]
    pair = web.prepared_targets(recipe, server, stores, workdir)
    result: dict[str, Any] = {"recipe": recipe, "server": server, "workers": settings.workers, "roles": {}}
    for target, store in zip(pair, stores, strict=True):
        database = DatabaseConfig.from_url(store["DATABASE_URL"]).dbname
        with serving(target, store, workers=settings.workers) as running:
            ids = write_ids(
                workdir / f"waits-{recipe}-{target.role}.txt", open_accounts(running.client, settings.write_accounts)
            )
            close = web.connection_per_request(server)  # as the web measurement sends them
            if settings.warm_up_servers:
                run_wrk(running.port, "deposit", settings.warmup, settings, ids, close_connections=close)
            stop = threading.Event()
            with ThreadPoolExecutor(max_workers=1) as sampler:
                seen = sampler.submit(sample, admin_url, database, stop)
                started = time.monotonic()
                load = run_wrk(running.port, "deposit", settings.duration, settings, ids, close_connections=close)
                stop.set()
                counts = seen.result(timeout=60)
        total = sum(counts.values()) or 1
        result["roles"][target.role] = {
            "shares": {state: counts[state] / total for state in STATES},
            "samples": total,
            "seconds": round(time.monotonic() - started, 1),
            "rps": load.rps,
        }
        progress.step(
            f"{target.label}: {load.rps:,.0f} deposits/s; "
            + ", ".join(f"{state} {counts[state] / total:.0%}" for state in STATES if counts[state])
        )
    return result
