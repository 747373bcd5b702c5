"""Reads of long-lived aggregates: when to turn on snapshotting and the aggregate cache.

An account's balance is rebuilt from its events on every read. This measures
``GET /accounts/<id>`` on accounts with many events, served by the plain WSGI
recipe under its uwsgi.ini on PostgreSQL, in four configurations set only by
eventsourcing's environment variables:

- neither: every read selects and replays every event;
- ``IS_SNAPSHOTTING_ENABLED=y``: a read loads the latest snapshot, then the
  events after it (here none: the snapshot is of the last version);
- ``AGGREGATE_CACHE_MAXSIZE``: each worker keeps recently used aggregates in
  memory, and a read only asks the database for events newer than the cached
  version (eventsourcing's "fastforward", on by default);
- both.

The accounts are written straight through the shared application, a batch of
events per save, and one snapshot is taken of each at its last version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import RECIPES, Progress, Settings, Target, check_load, median, run_wrk, serving, spread, write_ids

from bankaccounts.application import BankAccounts
from bankaccounts.config import DatabaseConfig

CONFIGURATIONS: dict[str, dict[str, str]] = {
    "neither": {},
    "snapshots": {"IS_SNAPSHOTTING_ENABLED": "y"},
    "cache": {"AGGREGATE_CACHE_MAXSIZE": "1000"},
    "snapshots+cache": {"IS_SNAPSHOTTING_ENABLED": "y", "AGGREGATE_CACHE_MAXSIZE": "1000"},
}
BATCH = 500  # events saved in one save(): the accounts are built in seconds, not minutes


def build_accounts(database_url: str, sizes: tuple[int, ...]) -> dict[int, str]:
    """One account per size, with that many events, and a snapshot at its last version."""
    env = {
        **DatabaseConfig.from_url(database_url).eventsourcing_env(),
        "CREATE_TABLE": "y",
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    accounts: dict[int, str] = {}
    with BankAccounts(env=env) as application:
        for size in sizes:
            account = application.open_account(f"Long-lived {size}", f"long{size}@example.com")
            remaining = size - 1  # opening is the first event
            while remaining:
                for _ in range(min(BATCH, remaining)):
                    account.deposit(1)
                remaining -= min(BATCH, remaining)
                application.save(account)
            assert account.version == size
            application.take_snapshot(account.id)
            accounts[size] = str(account.id)
    return accounts


def measure(database_url: str, settings: Settings, progress: Progress, workdir: Path) -> dict[str, Any]:
    accounts = build_accounts(database_url, settings.long_sizes)
    progress.step(f"built accounts with {', '.join(map(str, settings.long_sizes))} events, each with a snapshot")
    target = Target("plain-wsgi", "recipe", RECIPES / "plain-wsgi", RECIPES / "plain-wsgi" / "uwsgi.ini")
    results: dict[str, Any] = {"recipe": "plain-wsgi", "store": "postgresql", "accounts": {}, "configurations": {}}
    for size, account_id in accounts.items():
        results["accounts"][str(size)] = account_id
    for name, env in CONFIGURATIONS.items():
        results["configurations"][name] = {"env": env, "sizes": {}}
        with serving(target, {"DATABASE_URL": database_url}, workers=settings.workers, env=env) as server:
            for size, account_id in accounts.items():
                ids_file = write_ids(workdir / f"long-{size}.txt", [account_id])
                run_wrk(server.port, "read", settings.warmup, settings, ids_file)  # fills every worker's cache
                loads = []
                for _ in range(settings.rounds):
                    load = run_wrk(server.port, "read", settings.duration, settings, ids_file)
                    check_load(load, f"read of a {size}-event account ({name})")
                    loads.append(load.as_dict())
                rps = [load["rps"] for load in loads]
                results["configurations"][name]["sizes"][str(size)] = {
                    "rounds": loads,
                    "median_rps": median(rps),
                    "median_p50_ms": median([load["p50_ms"] for load in loads]),
                    "median_p99_ms": median([load["p99_ms"] for load in loads]),
                    "spread": spread(rps),
                }
                progress.step(
                    f"read of a {size}-event account, {name}: {median(rps):,.0f} req/s, "
                    f"p50 {median([load['p50_ms'] for load in loads]):.1f} ms"
                )
    return results
