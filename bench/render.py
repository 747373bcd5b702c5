"""Turn ``results.json`` into the docs page's summary (``summary.inc``), tables (``results.inc``) and plots (PNG).

run.py calls it at the end of a run; to re-render committed results alone::

    python render.py ../docs/performance/results.json

Everything here is derived from the JSON: edit the JSON's producer, never
the outputs. The page ``docs/performance.rst`` includes ``summary.inc`` (the
summary, at its top), ``results.inc`` (the tables) and ``numbers.inc`` (substitutions such as
``|deposit-postgresql-django-orm|`` for the numbers its prose quotes), and
shows the plots.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

STORE_NAMES = {
    "postgresql": "PostgreSQL",
    "sqlite": "SQLite",
    "cassandra": "Cassandra",
    "cassandra-ring": "Cassandra, 3 nodes",
}
#: The stores with a ceiling, and what measured it.
CEILING_NAMES = {
    "postgresql": "pgbench",
    "cassandra": "the store's write of an event through cassandra-driver",
    "cassandra-ring": "the store's write of an event through cassandra-driver, on 3 nodes with a replica on each",
}
#: The Cassandra clusters measured, with their nodes: one node, and a ring of three.
CASSANDRA_STORES = {"cassandra": 1, "cassandra-ring": 3}
QUEUE_NAMES = {"celery": "Celery", "rq": "RQ", "django": "Django ORM recipe"}
QUEUE_POOLS = {
    "celery": "pools",
    "rq": "worker classes (rq worker-pool -n 4)",
    "django": "workers (against the Celery and RQ recipes')",
}
#: What each queue benchmark's jobs do, and what its baseline is.
QUEUE_JOBS = {"django": "transfers"}
QUEUE_BASELINES = {"django": "the task-queue recipe's"}
RECIPE_COLOUR, BASELINE_COLOUR = "#1f77b4", "#bbbbbb"
SERVER_NAMES = {"uwsgi": "uWSGI", "uvicorn": "uvicorn", "gunicorn": "gunicorn", "granian": "Granian"}


#: In the web table, after the recipe's name: a pair measured against the like-for-like baseline.
LIKE_FOR_LIKE_LABEL = " (like-for-like baseline)"


def server_of(pair: dict[str, Any]) -> str:
    return str(pair.get("server", "uwsgi"))  # results from before ASGI recipes name no server: uWSGI


def pair_name(pair: dict[str, Any]) -> str:
    """The recipe, with its server where the recipe runs under several: ``fastapi (Granian)``."""
    server = server_of(pair)
    return pair["recipe"] if server == "uwsgi" else f"{pair['recipe']} ({SERVER_NAMES[server]})"


def pair_key(pair: dict[str, Any]) -> str:
    """``postgresql-django-orm``, ``sqlite-fastapi-granian``: the pair's part of a substitution's name."""
    server = server_of(pair)
    return f"{pair['store']}-{pair['recipe']}" + ("" if server == "uwsgi" else f"-{server}")


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def times(value: float) -> str:
    return f"{value:,.1f} times" if value < 10 else f"{value:,.0f} times"


def pct(value: float) -> str:
    return f"{value * 100:.0f} %"


def table(title: str, header: list[str], rows: list[list[str]], widths: str | None = None) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {widths}")
    lines.append("")
    for row in [header, *rows]:
        for index, cell in enumerate(row):
            lines.append(f"   {'*' if index == 0 else ' '} - {cell or 'n/a'}")
    return [*lines, ""]


def ceiling_clients(results: dict[str, Any], store: str) -> str | None:
    """The concurrency at which ``store``'s ceiling was highest: the ceiling is the best the database did."""
    by_clients = (results.get("ceiling") or {}).get(store, {}).get("by_clients") or {}
    if not by_clients:
        return None
    return max(by_clients, key=lambda clients: by_clients[clients]["median_tps"])


def ceiling_tps(results: dict[str, Any], store: str = "postgresql") -> float | None:
    """The database's ceiling for ``store`` (the best of the concurrencies measured), if measured."""
    clients = ceiling_clients(results, store)
    if clients is None:
        return None
    return float(results["ceiling"][store]["by_clients"][clients]["median_tps"])


def ceiling_run_median(results: dict[str, Any], store: str, key: str) -> float:
    """The median of ``key`` over the rounds of ``store``'s ceiling, at the concurrency of the ceiling."""
    clients = ceiling_clients(results, store)
    assert clients is not None
    return median_of([run[key] for run in results["ceiling"][store]["by_clients"][clients]["rounds"]])


# --- tables ----------------------------------------------------------------------------


def summary(results: dict[str, Any]) -> list[str]:
    lines = []
    for operation, verb in (("deposit", "Deposits"), ("read", "Reads")):
        for store in STORE_NAMES:
            pairs = [pair for pair in results.get("web", []) if pair["store"] == store]
            if not pairs:
                continue
            ceiling = ceiling_tps(results, store)
            ratios = ", ".join(f"{pair_name(pair)} {pct(pair['operations'][operation]['ratio'])}" for pair in pairs)
            line = f"- {verb} on {STORE_NAMES[store]}, recipe / baseline (requests per second): {ratios}."
            if operation == "deposit" and ceiling:
                to_ceiling = ", ".join(
                    f"{pair_name(pair)} {pct(pair['operations'][operation]['recipe_median']['rps'] / ceiling)}"
                    for pair in pairs
                )
                clients = ceiling_clients(results, store)
                line += (
                    f" Recipe / database ceiling ({CEILING_NAMES[store]}, {fmt(ceiling)} tps at {clients} clients, "
                    f"the better of the two measured): {to_ceiling}."
                )
            lines.append(line)
    for pair in results.get("like_for_like", []):
        deposit = pair["operations"]["deposit"]
        lines.append(
            f"- Deposits on PostgreSQL, {pair['recipe']} / its like-for-like baseline (each deposit applied once, "
            f"a ledger row, one transaction): {pct(deposit['ratio'])} ({fmt(deposit['recipe_median']['rps'])} "
            f"against {fmt(deposit['baseline_median']['rps'])} a second)."
        )
    long = results.get("long_aggregates")
    if long:
        sizes = sorted(long["accounts"], key=int)
        configurations = long["configurations"]
        for size in sizes:
            rate = {name: configurations[name]["sizes"][size]["median_rps"] for name in configurations}
            lines.append(
                f"- Reading an account with {int(size):,} events: {fmt(rate['neither'])} req/s with neither; "
                f"{times(rate['snapshots'] / rate['neither'])} that with snapshots, "
                f"{times(rate['cache'] / rate['neither'])} with the aggregate cache, "
                f"{times(rate['snapshots+cache'] / rate['neither'])} with both."
            )
    counted = results.get("statements", [])
    if on_sql := [pair for pair in counted if pair.get("store", "postgresql") == "postgresql"]:
        per_deposit = ", ".join(
            f"{pair_name(pair)} {per_request(pair['roles']['recipe']['deposit']['per_request'])} "
            f"({per_request(pair['roles']['baseline']['deposit']['per_request'])})"
            for pair in on_sql
        )
        lines.append(f"- SQL statements per deposit on PostgreSQL, recipe (baseline): {per_deposit}.")
    if on_cassandra := [pair for pair in counted if pair.get("store") == "cassandra"]:
        per_deposit = ", ".join(
            f"{pair_name(pair)} {per_request(pair['roles']['recipe']['deposit']['per_request'])} in "
            f"{per_request(pair['roles']['recipe']['deposit']['round_trips'])} requests "
            f"({per_request(pair['roles']['baseline']['deposit']['per_request'])} in "
            f"{per_request(pair['roles']['baseline']['deposit']['round_trips'])})"
            for pair in on_cassandra
        )
        lines.append(f"- CQL statements per deposit on Cassandra, recipe (baseline): {per_deposit}.")
    if sampled := results.get("waits"):
        table_lock = ", ".join(
            f"{pair_name(pair)} {pct(pair['roles']['recipe']['shares'].get(TABLE_LOCK, 0.0))}" for pair in sampled
        )
        lines.append(
            f"- The database sessions' time spent waiting for the events table's lock, deposits: {table_lock}."
        )
    for store in ("postgresql", "cassandra"):
        pairs = [pair for pair in results.get("web", []) if pair["store"] == store]
        if not pairs:
            continue
        memory = ", ".join(
            f"{pair_name(pair)} {fmt(pair['memory']['recipe']['median']['rss'])} MiB "
            f"(baseline {fmt(pair['memory']['baseline']['median']['rss'])})"
            for pair in pairs
        )
        lines.append(f"- Per-worker RSS after warm-up, {STORE_NAMES[store]}: {memory}.")
        first = ", ".join(
            f"{pair_name(pair)} {fmt(pair['first_request']['recipe']['median_s'] * 1000)} ms "
            f"(baseline {fmt(pair['first_request']['baseline']['median_s'] * 1000)})"
            for pair in pairs
        )
        lines.append(f"- Fork to first request served, {STORE_NAMES[store]}: {first}.")
    for name, queue in measured_queues(results).items():
        pools = ", ".join(
            f"{pool} {fmt(data['recipe_median'], 1 if data['recipe_median'] < 10 else 0)} jobs/s "
            f"({pct(data['ratio'])} of {QUEUE_BASELINES.get(name, 'the direct write')})"
            for pool, data in queue["pools"].items()
        )
        jobs = QUEUE_JOBS.get(name, "deposits")
        lines.append(f"- {QUEUE_NAMES.get(name, name)} {jobs}, by {QUEUE_POOLS.get(name, 'pool')}: {pools}.")
    lines.append(f"- Noise: {noise(results)}")
    for run in results.get("separate_runs", []):
        lines.append(f"- Measured in a separate run: {separate_run(run)}")
    return [*lines, ""]


#: The order pools and worker classes are shown in (results.json sorts its keys).
POOL_ORDER = ["prefork", "threads", "solo", "SimpleWorker", "Worker", "SpawnWorker"]
POOL_ORDER += ["celery-prefork", "rq-SimpleWorker", "rq-Worker"]


def measured_queues(results: dict[str, Any]) -> dict[str, Any]:
    """The queue benchmarks that ran, each with its pools in ``POOL_ORDER``."""
    queues = {}
    for name, data in (results.get("queues") or {}).items():
        if data:
            order = sorted(data["pools"], key=lambda pool: POOL_ORDER.index(pool) if pool in POOL_ORDER else 99)
            queues[name] = {**data, "pools": {pool: data["pools"][pool] for pool in order}}
    return queues


def separate_run(run: dict[str, Any]) -> str:
    what = ", ".join(f"``{key}``" for key in run["measured"])
    start, end = run["load_average_at_start"][0], run["load_average_at_end"][0]
    return (
        f"{what}, on {run['started_at'][:10]} ({minutes(run['duration_s'])}, ``{run['command']}``); "
        f"the 1-minute load average was {start:.1f} at its start and {end:.1f} at its end."
    )


def noise(results: dict[str, Any]) -> str:
    spreads = [
        data["ratio_spread"]
        for pair in results.get("web", [])
        for data in pair["operations"].values()
        if "ratio_spread" in data
    ]
    rounds = results["settings"]["rounds"]
    parts = []
    if rounds > 1 and spreads:
        parts.append(
            f"across {rounds} back-to-back rounds the recipe/baseline ratios disagreed by {pct(median_of(spreads))} "
            f"at the median and by {pct(max(spreads))} at worst"
        )
    generator = results.get("generator", {})
    if "start" in generator and "end" in generator:
        parts.append(
            f"the generator's ceiling moved from {fmt(generator['start']['median_rps'])} to "
            f"{fmt(generator['end']['median_rps'])} req/s between the start and the end of the run"
        )
    start, end = results.get("load_average_at_start"), results.get("load_average_at_end")
    if start and end:
        parts.append(f"the 1-minute load average was {start[0]:.1f} at the start and {end[0]:.1f} at the end")
    return ("; ".join(parts) or "one round only: no spread measured") + "."


def median_of(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def web_table(results: dict[str, Any]) -> list[str]:
    header = ["Recipe", "Server", "Store", "Request", "Recipe req/s", "p50 / p99 ms", "Baseline req/s", "p50 / p99 ms"]
    header += ["Recipe / baseline", "Recipe / ceiling"]
    rows = []
    like_for_like = [(pair, LIKE_FOR_LIKE_LABEL) for pair in results.get("like_for_like", [])]
    for pair, label in [(pair, "") for pair in results.get("web", [])] + like_for_like:
        for operation, data in pair["operations"].items():
            recipe, baseline = data["recipe_median"], data["baseline_median"]
            to_ceiling = ""
            ceiling = ceiling_tps(results, pair["store"])
            if operation == "deposit" and ceiling:
                to_ceiling = pct(recipe["rps"] / ceiling)
            spread = f" (±{pct(data['ratio_spread'] / 2)})" if data.get("ratio_spread") else ""
            rows.append(
                [
                    pair["recipe"] + label,
                    SERVER_NAMES[server_of(pair)],
                    STORE_NAMES[pair["store"]],
                    "deposit (POST)" if operation == "deposit" else "get account (GET)",
                    fmt(recipe["rps"]),
                    f"{fmt(recipe['p50_ms'], 1)} / {fmt(recipe['p99_ms'], 1)}",
                    fmt(baseline["rps"]),
                    f"{fmt(baseline['p50_ms'], 1)} / {fmt(baseline['p99_ms'], 1)}",
                    f"{data['ratio']:.2f}{spread}",
                    to_ceiling,
                ]
            )
    title = (
        f"Web recipes ({results['settings']['workers']} workers) against their baselines under the same server "
        "(plain ORM; Cassandra: cassandra-driver)"
    )
    return table(title, header, rows)


def ceilings_table(results: dict[str, Any]) -> list[str]:
    rows = []
    generator = results.get("generator", {})
    for moment in ("start", "end"):
        if moment in generator:
            data = generator[moment]
            p99 = median_of([run["p99_ms"] for run in data["rounds"]])
            rows.append(
                [
                    f"wrk against a trivial WSGI app (run's {moment})",
                    str(results["settings"]["connections"]),
                    f"{fmt(data['median_rps'])} req/s",
                    f"p99 {fmt(p99, 1)} ms",
                ]
            )
    for clients, data in (results.get("ceiling", {}).get("postgresql", {}).get("by_clients", {})).items():
        p50 = median_of([run["p50_ms"] for run in data["rounds"]])
        p99 = median_of([run["p99_ms"] for run in data["rounds"]])
        rows.append(
            [
                "pgbench, a deposit's insert pattern",
                clients,
                f"{fmt(data['median_tps'])} tps",
                f"p50 {p50:.2f}, p99 {p99:.2f} ms",
            ]
        )
    for cluster in CASSANDRA_STORES:
        for clients, data in results.get("ceiling", {}).get(cluster, {}).get("by_clients", {}).items():
            rounds = data["rounds"]
            p50 = median_of([run["p50_ms"] for run in rounds])
            p99 = median_of([run["p99_ms"] for run in rounds])
            retries = median_of([run["retries_per_transaction"] for run in rounds])
            generator = median_of([run["generator_cpu"] for run in rounds])
            server = median_of([run["server_cpu"] for run in rounds])
            rows.append(
                [
                    f"{STORE_NAMES[cluster]}: the store's write of an event (2 lightweight transactions), "
                    "cassandra-driver",
                    clients,
                    f"{fmt(data['median_tps'])} tps ({retries:.2f} retries each; CPU cores used: "
                    f"Cassandra {server:.2f}, generator {generator:.2f})",
                    f"p50 {p50:.2f}, p99 {p99:.2f} ms",
                ]
            )
    return table("Ceilings: the load generator, and the databases", ["What", "Clients", "Rate", "Latency"], rows)


def memory_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for pair in results.get("web", []):
        memory, first = pair["memory"], pair["first_request"]
        rows.append(
            [
                pair["recipe"],
                SERVER_NAMES[server_of(pair)],
                STORE_NAMES[pair["store"]],
                f"{fmt(memory['recipe']['median']['rss'])} / {fmt(memory['baseline']['median']['rss'])}",
                f"{fmt(memory['recipe']['median']['uss'])} / {fmt(memory['baseline']['median']['uss'])}",
                f"{fmt(first['recipe']['median_s'] * 1000)} / {fmt(first['baseline']['median_s'] * 1000)}",
            ]
        )
    header = [
        "Recipe",
        "Server",
        "Store",
        "Worker RSS, MiB (recipe / baseline)",
        "Worker USS, MiB (recipe / baseline)",
        "Fork to first request, ms (recipe / baseline)",
    ]
    return table("Per worker: memory after warm-up, and start-up", header, rows)


def aggregates_table(results: dict[str, Any]) -> list[str]:
    long = results.get("long_aggregates")
    if not long:
        return []
    rows = []
    for size in sorted(long["accounts"], key=int):
        for configuration in long["configurations"].values():
            data = configuration["sizes"][size]
            settings = ", ".join(f"``{key}={value}``" for key, value in configuration["env"].items()) or "(defaults)"
            rows.append(
                [
                    f"{int(size):,}",
                    settings,
                    fmt(data["median_rps"]),
                    f"{fmt(data['median_p50_ms'], 1)} / {fmt(data['median_p99_ms'], 1)}",
                ]
            )
    header = ["Events", "Settings", "req/s", "p50 / p99 ms"]
    workers = results["settings"]["workers"]
    return table(f"Reading one long-lived account (plain-wsgi, PostgreSQL, {workers} workers)", header, rows)


def contention_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for measured in results.get("contention", []):
        for mode in ("on", "off"):
            median, answers = measured[f"{mode}_median"], measured[f"{mode}_answers"]
            rows.append(
                [
                    measured["recipe"],
                    "on (default)" if mode == "on" else "off",
                    fmt(median["rps"]),
                    f"{fmt(median['p50_ms'], 1)} / {fmt(median['p99_ms'], 1)}",
                    fmt(median["max_ms"], 0),
                    f"{answers['409']:,} of {answers['all']:,}",
                    f"{answers['other_failures']:,}",
                ]
            )
    if not rows:
        return []
    header = ["Recipe", "AGGREGATE_LOCKS", "req/s", "p50 / p99 ms", "max ms", "409 answers", "other failures"]
    workers = results["settings"]["workers"]
    return table(f"Sixteen writers on one account (PostgreSQL, uWSGI, {workers} workers)", header, rows)


#: The component of a sample in uWSGI's own code (bench/profiles.py names them).
SERVER_COMPONENT = "the server (uWSGI's C code: between requests, reading and answering them)"
#: The profiles' components (bench/profiles.py's names), in the tables' order, with their columns' names.
PROFILE_COLUMNS = {
    "event store (recorder)": "store",
    "eventsourcing": "eventsourcing",
    "database driver": "driver",
    "ORM, SQL toolkit, transactions": "ORM, SQL",
    "web framework and server": "framework",
    "JSON": "JSON",
    SERVER_COMPONENT: "server",
    "the application (bankaccounts, the recipe, the baseline)": "app",
    "other (standard library, C extensions)": "other",
}
PROFILE_MODES = {
    "python": "running Python code (samples while a thread of it holds the GIL)",
    "wall": "wall clock (samples while it runs and while it waits: for the database, a lock, a request)",
}


def minutes(seconds: float) -> str:
    """A run's length in whole minutes, at least one: ``1 minute``, ``12 minutes``."""
    count = max(1, round(seconds / 60))
    return f"{count} minute" if count == 1 else f"{count} minutes"


def profiles_tables(results: dict[str, Any]) -> list[str]:
    measured = results.get("profiles", [])
    if not measured:
        return []
    lines: list[str] = []
    for mode, description in PROFILE_MODES.items():
        rows = []
        for pair in measured:
            if f"recipe/deposit/{mode}" not in pair["profiles"]:
                continue  # an ASGI worker has no wall-clock view (bench/profiles.py)
            for operation in ("deposit", "read"):
                for role in ("recipe", "baseline"):
                    profile = pair["profiles"][f"{role}/{operation}/{mode}"]
                    shares = profile["components"]
                    if unknown := set(shares) - set(PROFILE_COLUMNS):
                        # A component renamed in profiles.py would otherwise show as 0 %.
                        msg = f"profile components with no column: {sorted(unknown)}"
                        raise ValueError(msg)
                    rows.append(
                        [
                            pair_name(pair) if role == "recipe" else "baseline",
                            operation,
                            *(pct(shares.get(name, 0.0)) for name in PROFILE_COLUMNS),
                            f"{profile['samples']:,}",
                        ]
                    )
        header = [
            "Web recipe (uWSGI unless named; PostgreSQL, or one Cassandra node)",
            "Load",
            *PROFILE_COLUMNS.values(),
            "samples",
        ]
        lines += table(f"Where one worker's time goes, {description}", header, rows)
    return lines


#: A statement's columns and values, shortened to what tells statements apart in a table.
SELECTED_COLUMNS = re.compile(r"^SELECT (.{40,}?) FROM ")
LONG_PARENTHESES = re.compile(r"\([^()]{30,}\)")
STATEMENT_WIDTH = 90


def short_statement(text: str) -> str:
    """``SELECT … FROM events WHERE …``: the columns and long lists elided, at most STATEMENT_WIDTH long."""
    text = LONG_PARENTHESES.sub("(…)", SELECTED_COLUMNS.sub("SELECT … FROM ", text))
    return text if len(text) <= STATEMENT_WIDTH else text[: STATEMENT_WIDTH - 1] + "…"


def per_request(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def statements_tables(results: dict[str, Any]) -> list[str]:
    measured = results.get("statements", [])
    if not measured:
        return []
    rows = [
        [
            pair_name(pair),
            *(
                per_request(pair["roles"][role][operation]["per_request"])
                for operation in ("deposit", "read")
                for role in ("recipe", "baseline")
            ),
        ]
        for pair in measured
    ]
    header = [
        "Web recipe (PostgreSQL, or one Cassandra node)",
        "deposit",
        "baseline's deposit",
        "read",
        "baseline's read",
    ]
    lines = table(
        "Statements per request, from the database's own record of the statements it ran "
        "(PostgreSQL's statement log, Cassandra's audit log)",
        header,
        rows,
    )
    for pair in measured:
        counts: dict[str, list[float]] = {}
        for column, role in enumerate(("recipe", "baseline")):
            for text, count in pair["roles"][role]["deposit"]["statements"]:
                counts.setdefault(short_statement(text), [0.0, 0.0])[column] += count
        statement_rows = [
            [f"``{text}``", per_request(recipe), per_request(baseline)]
            for text, (recipe, baseline) in sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))
        ]
        lines += table(
            f"What one deposit runs: {pair_name(pair)}",
            ["Statement", "recipe", "baseline"],
            statement_rows,
            widths="70 15 15",
        )
    return lines


#: The sessions' states (bench/waits.py's names), in the table's order, with their columns' names.
TABLE_LOCK = "waiting for the events table's lock"
WAIT_COLUMNS = {
    "running a statement": "running",
    TABLE_LOCK: "table lock",
    "waiting for an account's advisory lock": "account lock",
    "waiting for another transaction": "row lock",
    "flushing the WAL at commit": "commit",
    "other waits": "other waits",
    "idle in a transaction": "idle in transaction",
    "idle between requests": "idle",
}


def waits_table(results: dict[str, Any]) -> list[str]:
    measured = results.get("waits", [])
    if not measured:
        return []
    rows = []
    for pair in measured:
        for role in ("recipe", "baseline"):
            shares = pair["roles"][role]["shares"]
            if unknown := set(shares) - set(WAIT_COLUMNS):
                msg = f"session states with no column: {sorted(unknown)}"
                raise ValueError(msg)
            rows.append(
                [
                    pair_name(pair) if role == "recipe" else "baseline",
                    fmt(pair["roles"][role]["rps"]),
                    *(pct(shares.get(state, 0.0)) for state in WAIT_COLUMNS),
                ]
            )
    header = ["Web recipe (PostgreSQL)", "deposits/s", *WAIT_COLUMNS.values()]
    title = "What the database sessions do under the deposit load: shares of their time, sampled from pg_stat_activity"
    return table(title, header, rows)


def queues_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for name, data in measured_queues(results).items():
        for pool, measured in data["pools"].items():
            spread = f" (±{pct(measured['ratio_spread'] / 2)})" if measured.get("ratio_spread") else ""
            digits = 1 if measured["recipe_median"] < 10 else 0
            rows.append(
                [
                    QUEUE_NAMES.get(name, name),
                    pool,
                    str(measured["tasks_per_batch"]),
                    fmt(measured["recipe_median"], digits),
                    fmt(measured["baseline_median"], digits),
                    f"{measured['ratio']:.2f}{spread}",
                ]
            )
    if not rows:
        return []
    header = ["Queue", "Pool or worker class", "Jobs a batch", "Recipe jobs/s", "Baseline jobs/s"]
    header.append("Recipe / baseline")
    title = "Task-queue workers: jobs per second (PostgreSQL, Valkey broker)"
    title += "; the baseline writes the row directly, or, for the Django ORM recipe, is the task-queue recipe's worker"
    return table(title, header, rows)


def machine_table(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    # Sorted, as results.json's keys are: the same page from a run as from its file read again.
    packages = ", ".join(f"{name} {version}" for name, version in sorted(machine["packages"].items()))
    postgresql = machine.get("postgresql", {})
    server = ", ".join(f"{key} {value}" for key, value in sorted(postgresql.items()))
    rows = [
        ["CPUs", f"{machine['cpus']} ({machine['cpu_model']})"],
        ["Memory", f"{machine['memory_gib']} GiB"],
        ["System", machine["os"]],
        ["Python", machine["python"]],
        ["Load generator", machine["wrk"]],
        ["PostgreSQL", server or "n/a"],
        *cassandra_row(machine),
        ["Packages", packages],
        ["Run", f"{results['started_at']}, {minutes(results['duration_s'])}, ``{results['command']}``"],
    ]
    for run in results.get("separate_runs", []):
        packages = ", ".join(f"{name} {version}" for name, version in sorted(run["packages"].items()))
        rows.append(
            [
                "Separate run",
                f"{', '.join(run['measured'])}: {run['started_at']}, {minutes(run['duration_s'])}, "
                f"``{run['command']}``" + (f"; {packages}" if packages else ""),
            ]
        )
    return table("The machine and the run", ["What", "Value"], rows, widths="20 80")


def cassandra_row(machine: dict[str, Any]) -> list[list[str]]:
    rows = []
    for store in CASSANDRA_STORES:
        cassandra = machine.get(store)
        if not cassandra:
            continue
        settings = ", ".join(
            f"{key} {value}" for key, value in sorted(cassandra.items()) if key not in ("version", "nodes")
        )
        nodes = "1 node" if cassandra["nodes"] == 1 else f"{cassandra['nodes']} nodes"
        rows.append([STORE_NAMES[store], f"{cassandra['version']}, {nodes}, {settings}"])
    return rows


def generated(results: dict[str, Any]) -> list[str]:
    """The first lines of each generated file."""
    lines = [
        ".. This file is generated by bench/render.py from results.json beside it: do not edit it.",
        "",
    ]
    if results["mode"] != "full":
        lines += [".. warning:: A quick (smoke) run: tiny durations, numbers not meaningful.", ""]
    return lines


def render_summary(results: dict[str, Any]) -> str:
    return "\n".join([*generated(results), *summary(results)])


def render_tables(results: dict[str, Any]) -> str:
    lines = generated(results)
    parts = (
        web_table,
        profiles_tables,
        statements_tables,
        waits_table,
        ceilings_table,
        memory_table,
        contention_table,
        aggregates_table,
        queues_table,
    )
    for part in (*parts, machine_table):
        lines += part(results)
    return "\n".join(lines)


# --- numbers for the page's prose ---------------------------------------------------------


def numbers(results: dict[str, Any]) -> dict[str, str]:
    """Substitutions (``|name|``) for the numbers the page's prose quotes, so that they follow the run.

    Names: ``deposit-postgresql-django-orm`` (the ratio, as a percentage),
    with ``-rps``, ``-baseline-rps``, ``-ceiling``, ``-spread`` (and
    ``deposit-cassandra-django-cassandra`` and so on; a recipe under several
    servers with the server last: ``deposit-postgresql-fastapi-granian``); the ceilings,
    ``ceiling-tps`` (pgbench) and ``ceiling-cassandra-tps``: the best of the
    concurrencies measured (for Cassandra with ``-clients``, that concurrency,
    and ``-retries``, ``-generator`` and ``-server``, CPU cores used, at it;
    ``-16-tps`` and ``-4-tps`` at each, ``-16-writes`` and ``-16-timed-out`` over its rounds),
    ``cassandra-version``, ``cassandra-commitlog``;
    ``rss-postgresql-django-orm`` (and ``-baseline``), ``uss-...``,
    ``first-request-...``; ``like-for-like-deposit`` (and ``-read``; with ``-rps``, ``-baseline-rps``,
    ``-spread``: plain-wsgi against its baseline's like-for-like variant);
    ``contention-plain-wsgi-on-rps`` (and ``-p50``, ``-p99``, ``-409``, ``-answers``; ``-off-``
    likewise); ``long-1000-cache`` (req/s, and ``-times``: the multiple of neither);
    ``celery-prefork`` and ``rq-worker`` (ratios, with
    ``-rps``, ``-baseline-rps`` and ``-jobs``, a batch); ``projections-lag-p50`` (and ``-p99``,
    ``-max``; ``projections-rps``, ``-events``, ``-seconds``: the view following plain-wsgi);
    ``profile-django-orm-deposit-driver`` (and ``-baseline-driver``; ``-python``: the share of
    the time one worker ran Python; ``-server``: in uWSGI outside the application; ``-read-`` likewise;
    a worker under uWSGI only, with a wall-clock view), ``profile-fastapi-deposit-python-framework``
    (each of PROFILE_COLUMNS, as a slug: a share of the Python view's samples, every profiled pair);
    ``statements-django-orm-deposit`` (and ``-baseline``; ``-read``): SQL statements per request
    (``statements-requests``: how many requests each count is over); ``waits-django-orm-table-lock``
    (and ``-baseline``; each of WAIT_COLUMNS, spaces as hyphens): a share of the sessions' time;
    settings (``duration``, ``rounds``, ...);
    the noise (``spread-median``, ``spread-max``, ``load-start``, ...); and
    for each separate run, ``queues-rq-run-load-start`` and the like.
    """
    values: dict[str, str] = {}
    settings = results["settings"]
    for key in ("duration", "warmup"):
        values[key] = f"{settings[key]:g} second" + ("" if settings[key] == 1 else "s")
    for key in (
        "rounds",
        "connections",
        "workers",
        "write_accounts",
        "read_accounts",
        "read_account_events",
        "first_request_repeats",
    ):
        values[key.replace("_", "-")] = fmt(settings[key])
    if results.get("profiles"):
        values["profile-rate"] = fmt(results["profiles"][0].get("rate", 200))
    for pair in results.get("profiles", []):
        for role in ("recipe", "baseline"):
            for operation in ("deposit", "read"):
                name = f"profile-{pair['recipe']}-{operation}" + ("-baseline" if role == "baseline" else "")
                python = pair["profiles"][f"{role}/{operation}/python"]
                for component, column in PROFILE_COLUMNS.items():
                    slug = re.sub(r"[^a-z]+", "-", column.lower())
                    values[f"{name}-python-{slug}"] = pct(python["components"].get(component, 0.0))
                wall = pair["profiles"].get(f"{role}/{operation}/wall")
                if wall is None:
                    continue  # an ASGI worker: the Python view only
                values[f"{name}-driver"] = pct(wall["components"].get("database driver", 0.0))
                values[f"{name}-server"] = pct(wall["components"].get(SERVER_COMPONENT, 0.0))
                # Both sampled at the same rate for as long: the share of the time it held the GIL.
                values[f"{name}-python"] = pct(min(1.0, python["samples"] / wall["samples"]))
    if results.get("statements"):
        values["statements-requests"] = fmt(results["statements"][0]["requests"])
    for pair in results.get("statements", []):
        for role in ("recipe", "baseline"):
            for operation in ("deposit", "read"):
                name = f"statements-{pair['recipe']}-{operation}" + ("-baseline" if role == "baseline" else "")
                counted = pair["roles"][role][operation]
                values[name] = per_request(counted["per_request"])
                if "round_trips" in counted:  # Cassandra's: the requests that carried them (a batch is one)
                    values[f"{name}-requests"] = per_request(counted["round_trips"])
    for pair in results.get("waits", []):
        for role in ("recipe", "baseline"):
            for state, column in WAIT_COLUMNS.items():
                name = f"waits-{pair['recipe']}-{column.replace(' ', '-')}" + (
                    "-baseline" if role == "baseline" else ""
                )
                values[name] = pct(pair["roles"][role]["shares"].get(state, 0.0))
    ceiling = ceiling_tps(results)
    if ceiling:
        values["ceiling-tps"] = fmt(ceiling)
        values["ceiling-clients"] = str(ceiling_clients(results, "postgresql"))
    for store in CASSANDRA_STORES:
        for clients, data in results.get("ceiling", {}).get(store, {}).get("by_clients", {}).items():
            values[f"ceiling-{store}-{clients}-tps"] = fmt(data["median_tps"])
            values[f"ceiling-{store}-{clients}-timed-out"] = fmt(sum(r.get("timed_out", 0) for r in data["rounds"]))
            values[f"ceiling-{store}-{clients}-writes"] = fmt(sum(r["transactions"] for r in data["rounds"]))
        best = ceiling_tps(results, store)
        if best:
            values[f"ceiling-{store}-tps"] = fmt(best)
            values[f"ceiling-{store}-clients"] = str(ceiling_clients(results, store))
            for key in ("retries_per_transaction", "generator_cpu", "server_cpu"):
                values[f"ceiling-{store}-{key.split('_')[0]}"] = f"{ceiling_run_median(results, store, key):.2f}"
    cassandra = results.get("machine", {}).get("cassandra")
    if cassandra:
        values["cassandra-version"] = cassandra["version"]
        values["cassandra-commitlog"] = f"{cassandra['commitlog_sync']} ({cassandra['commitlog_sync_period']})"
    for pair in results.get("web", []):
        name = pair_key(pair)
        for operation, data in pair["operations"].items():
            values.update(ratio_numbers(f"{operation}-{name}", data))
            store_ceiling = ceiling_tps(results, pair["store"])
            if operation == "deposit" and store_ceiling:
                values[f"{operation}-{name}-ceiling"] = pct(data["recipe_median"]["rps"] / store_ceiling)
        for kind in ("rss", "uss"):
            values[f"{kind}-{name}"] = fmt(pair["memory"]["recipe"]["median"][kind])
            values[f"{kind}-{name}-baseline"] = fmt(pair["memory"]["baseline"]["median"][kind])
        values[f"first-request-{name}"] = f"{fmt(pair['first_request']['recipe']['median_s'] * 1000)} ms"
        values[f"first-request-{name}-baseline"] = f"{fmt(pair['first_request']['baseline']['median_s'] * 1000)} ms"
    for pair in results.get("like_for_like", []):
        for operation, data in pair["operations"].items():
            values.update(ratio_numbers(f"like-for-like-{operation}", data))
    for measured in results.get("contention", []):
        for mode in ("on", "off"):
            key = f"contention-{measured['recipe']}-{mode}"
            median, answers = measured[f"{mode}_median"], measured[f"{mode}_answers"]
            values[f"{key}-rps"] = fmt(median["rps"])
            values[f"{key}-p50"] = f"{fmt(median['p50_ms'])} ms"
            values[f"{key}-p99"] = f"{fmt(median['p99_ms'])} ms"
            values[f"{key}-409"] = fmt(answers["409"])
            values[f"{key}-answers"] = fmt(answers["all"])
    long = results.get("long_aggregates")
    if long:
        for size in long["accounts"]:
            neither = long["configurations"]["neither"]["sizes"][size]["median_rps"]
            for configuration, data in long["configurations"].items():
                rate = data["sizes"][size]["median_rps"]
                values[f"long-{size}-{configuration}"] = fmt(rate)
                values[f"long-{size}-{configuration}-times"] = times(rate / neither)
    for name, queue in measured_queues(results).items():
        for pool, data in queue["pools"].items():
            key = f"{name}-{pool.lower()}"
            digits = 1 if data["recipe_median"] < 10 else 0
            values[key] = pct(data["ratio"])
            values[f"{key}-rps"] = fmt(data["recipe_median"], digits)
            values[f"{key}-baseline-rps"] = fmt(data["baseline_median"], digits)
            values[f"{key}-spread"] = f"±{pct(data.get('ratio_spread', 0) / 2)}"
            values[f"{key}-jobs"] = fmt(data["tasks_per_batch"])
    following = results.get("projections")
    if following:
        values["projections-rps"] = fmt(following["deposits_rps"])
        values["projections-events"] = fmt(following["events"])
        values["projections-seconds"] = fmt(following["seconds"])
        for key, value in following["lag_ms"].items():
            values[f"projections-lag-{key}"] = f"{fmt(value)} ms"
    spreads = [data["ratio_spread"] for pair in results.get("web", []) for data in pair["operations"].values()]
    if spreads:
        values["spread-median"], values["spread-max"] = pct(median_of(spreads)), pct(max(spreads))
        values["spread-max-half"] = f"±{pct(max(spreads) / 2)}"
    generator = results.get("generator", {})
    for moment in ("start", "end"):
        if moment in generator:
            values[f"generator-{moment}"] = fmt(generator[moment]["median_rps"])
        if f"load_average_at_{moment}" in results:
            values[f"load-{moment}"] = f"{results[f'load_average_at_{moment}'][0]:.1f}"
    values["run-date"] = results["started_at"][:10]
    values["run-minutes"] = fmt(results["duration_s"] / 60)
    for run in results.get("separate_runs", []):
        for measured in run["measured"]:
            key = measured.replace(".", "-")
            values[f"{key}-run-date"] = run["started_at"][:10]
            values[f"{key}-run-minutes"] = fmt(run["duration_s"] / 60)
            for moment in ("start", "end"):
                values[f"{key}-run-load-{moment}"] = f"{run[f'load_average_at_{moment}'][0]:.1f}"
    return values


def ratio_numbers(name: str, data: dict[str, Any]) -> dict[str, str]:
    """One operation of a pair: ``name`` (the ratio), ``-rps``, ``-baseline-rps`` and ``-spread``."""
    return {
        name: pct(data["ratio"]),
        f"{name}-rps": fmt(data["recipe_median"]["rps"]),
        f"{name}-baseline-rps": fmt(data["baseline_median"]["rps"]),
        f"{name}-spread": f"±{pct(data.get('ratio_spread', 0) / 2)}",
    }


def render_numbers(results: dict[str, Any]) -> str:
    lines = [
        ".. This file is generated by bench/render.py from results.json beside it: do not edit it.",
        ".. Substitutions for the numbers docs/performance.rst quotes in its prose.",
        "",
    ]
    lines += [f".. |{name}| replace:: {value}" for name, value in sorted(numbers(results).items())]
    return "\n".join(lines)


# --- plots ------------------------------------------------------------------------------


def plot_web(results: dict[str, Any], path: Path) -> Path | None:
    pairs = results.get("web", [])
    if not pairs:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(16, 4.8), sharey=False)
    labels = [f"{pair_name(pair)}\n{STORE_NAMES[pair['store']]}" for pair in pairs]
    positions = range(len(pairs))
    for axis, operation, title in zip(axes, ("deposit", "read"), ("Deposit (POST)", "Get account (GET)"), strict=True):
        measured = [pair["operations"][operation] for pair in pairs]
        for role, offset, label, colour in (
            ("recipe", -0.2, "recipe (event-sourced)", RECIPE_COLOUR),
            ("baseline", 0.2, "baseline (plain ORM, driver)", BASELINE_COLOUR),
        ):
            medians = [data[f"{role}_median"]["rps"] for data in measured]
            axis.bar(
                [p + offset for p in positions],
                medians,
                0.4,
                yerr=rounds_range(measured, role, medians),
                error_kw={"elinewidth": 0.8, "capsize": 2},
                label=label,
                color=colour,
            )
        for position, data in enumerate(measured):
            # The table's ratio (the median of the rounds' ratios), above the recipe's highest round.
            top = max(run["rps"] for run in data["recipe"])
            axis.annotate(f"{data['ratio']:.2f}", (position - 0.2, top), ha="center", va="bottom", fontsize=7)
        axis.set_xticks(list(positions), labels, fontsize=7, rotation=45, ha="right")
        axis.set_title(title)
        axis.set_ylabel("requests per second")
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(
        f"{results['settings']['workers']} workers (uWSGI, or the server named), {results['settings']['connections']} "
        "connections: recipe vs baseline without event sourcing under the same server\n"
        "bars: the median round; lines: the lowest to the highest round; "
        "above: the median of the rounds' ratios, as in the table",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def rounds_range(measured: list[dict[str, Any]], role: str, medians: list[float]) -> list[list[float]]:
    """Error bars from each median down to the lowest round and up to the highest."""
    lows = [median - min(run["rps"] for run in data[role]) for data, median in zip(measured, medians, strict=True)]
    highs = [max(run["rps"] for run in data[role]) - median for data, median in zip(measured, medians, strict=True)]
    return [lows, highs]


def plot_aggregates(results: dict[str, Any], path: Path) -> Path | None:
    long = results.get("long_aggregates")
    if not long:
        return None
    sizes = sorted(long["accounts"], key=int)
    names = list(long["configurations"])
    figure, axis = plt.subplots(figsize=(8.5, 4))
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        values = [long["configurations"][name]["sizes"][size]["median_rps"] for size in sizes]
        offsets = [position + (index - (len(names) - 1) / 2) * width for position in range(len(sizes))]
        axis.bar(offsets, values, width, label=name)
    short = [pair for pair in results.get("web", []) if (pair["recipe"], pair["store"]) == ("plain-wsgi", "postgresql")]
    if short:
        events = results["settings"]["read_account_events"]
        rate = short[0]["operations"]["read"]["recipe_median"]["rps"]
        axis.axhline(rate, color="black", linestyle="--", linewidth=1, label=f"{events} events (the web reads)")
    axis.set_xticks(range(len(sizes)), [f"{int(size):,} events" for size in sizes])
    axis.set_yscale("log")
    axis.set_ylabel("requests per second (log scale)")
    axis.set_title("Reading one long-lived account: snapshots and the aggregate cache")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(axis="y", alpha=0.3, which="both")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_queues(results: dict[str, Any], path: Path) -> Path | None:
    queues = measured_queues(results)
    if not queues:
        return None
    figure, axes = plt.subplots(1, len(queues), figsize=(5.5 * len(queues), 3.8), squeeze=False)
    for axis, (name, queue) in zip(axes[0], queues.items(), strict=True):
        pools = list(queue["pools"])
        recipe = [queue["pools"][pool]["recipe_median"] for pool in pools]
        baseline = [queue["pools"][pool]["baseline_median"] for pool in pools]
        positions = range(len(pools))
        django = name == "django"
        recipe_label = "Django ORM recipe" if django else "recipe (event-sourced)"
        baseline_label = "Celery or RQ recipe" if django else "direct write"
        axis.bar([p - 0.2 for p in positions], recipe, 0.4, label=recipe_label, color=RECIPE_COLOUR)
        axis.bar([p + 0.2 for p in positions], baseline, 0.4, label=baseline_label, color=BASELINE_COLOUR)
        for position, pool in enumerate(pools):
            ratio = queue["pools"][pool]["ratio"]
            axis.annotate(f"{ratio:.2f}", (position - 0.2, recipe[position]), ha="center", va="bottom", fontsize=7)
        axis.set_xticks(list(positions), pools, fontsize=8)
        if max(recipe + baseline) > 20 * min(recipe + baseline):
            axis.set_yscale("log")  # SpawnWorker's few jobs a second beside SimpleWorker's hundreds
            axis.set_ylabel(f"{QUEUE_JOBS.get(name, 'deposits')} per second (log scale)")
        else:
            axis.set_ylabel(f"{QUEUE_JOBS.get(name, 'deposits')} per second")
        axis.set_title(f"{QUEUE_NAMES.get(name, name)}: {QUEUE_POOLS.get(name, 'pools')}", fontsize=9)
        axis.legend(fontsize=7)
        axis.grid(axis="y", alpha=0.3, which="both")
    figure.suptitle("Task-queue workers, PostgreSQL, Valkey broker (ratio above each blue bar)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def render(results: dict[str, Any], output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    summary_file = output / "summary.inc"
    summary_file.write_text(render_summary(results) + "\n")
    tables = output / "results.inc"
    tables.write_text(render_tables(results) + "\n")
    prose = output / "numbers.inc"
    prose.write_text(render_numbers(results) + "\n")
    plots = [
        plot_web(results, output / "web.png"),
        plot_aggregates(results, output / "long-aggregates.png"),
        plot_queues(results, output / "queues.png"),
    ]
    return [summary_file, tables, prose, *(plot for plot in plots if plot is not None)]


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent / "docs/performance/results.json")
    for written in render(json.loads(source.read_text()), source.parent):
        print(f"wrote {written}")
