"""Web recipes against their baselines, each under the recipe's own server config.

A baseline is the same framework without event sourcing: its plain ORM on
PostgreSQL and SQLite; cassandra-driver on an ordinary table for the
Cassandra recipes. WSGI recipes are measured under their uwsgi.ini; the
FastAPI recipe under each of its three servers, from its own files.

For each recipe and store, both servers run side by side (4 workers each; an
idle server costs nothing) and are measured in turn, back to back: a deposit
round on the recipe, then on the baseline, then a read round on each; then
again. Each round's ratio compares two measurements taken seconds apart,
which is what survives a noisy machine.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import (
    BASELINES,
    RECIPES,
    BenchError,
    BenchServer,
    Progress,
    Settings,
    Target,
    check_load,
    fork_to_first_request,
    median,
    open_accounts,
    run_python,
    run_wrk,
    serving,
    spread,
    worker_memory,
    write_ids,
)

from cookbook_testing.servers import COMMANDS

#: Every landed web recipe (recipes/rq is a worker recipe; its benchmark comes with it).
WEB_RECIPES = [
    "flask-sqlalchemy",
    "plain-wsgi",
    "pyramid-sqlalchemy",
    "django-orm",
    "fastapi",
    "flask-cassandra",
    "django-cassandra",
]
#: The servers a recipe is measured under: an ASGI recipe's own three, compared in one run;
#: uWSGI for the rest.
RECIPE_SERVERS = {"fastapi": ["uvicorn", "gunicorn", "granian"]}
SERVERS = ["uwsgi", "uvicorn", "gunicorn", "granian"]
#: The stores each recipe runs on (the SQL recipes: both of DATABASE_URL's).
RECIPE_STORES = {"flask-cassandra": ["cassandra"], "django-cassandra": ["cassandra"]}
SQL_STORES = ["postgresql", "sqlite"]
OPERATIONS = ["deposit", "read"]
#: The plain WSGI baseline's variant with the recipe's guarantees (its wsgi.py says what it does).
LIKE_FOR_LIKE = {"BASELINE_DEPOSIT": "ledger"}
#: Django projects: the command that makes the database ready, recipe's and baseline's, as their READMEs say.
DJANGO_PREPARE = {
    "django-orm": (("migrate", "--no-input"), ("migrate", "--no-input")),
    "django-cassandra": (("create_event_store",), ("create_ledger",)),
}


def stores_of(recipe: str) -> list[str]:
    return RECIPE_STORES.get(recipe, SQL_STORES)


def servers_of(recipe: str) -> list[str]:
    return RECIPE_SERVERS.get(recipe, ["uwsgi"])


def django_env() -> dict[str, str]:
    """What the Django recipe needs to serve plain HTTP on loopback (as cookbook.py serve sets it)."""
    return {
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
    }


def manage(target: Target, store: Mapping[str, str]) -> None:
    """``python manage.py migrate`` (or ``create_event_store``), as the Django recipes' READMEs say to do
    before serving; the baselines' ``manage.py`` does the same for theirs."""
    recipe_args, baseline_args = DJANGO_PREPARE[target.name]
    args = recipe_args if target.role == "recipe" else baseline_args
    run_python(target.app_dir, ["manage.py", *args], {**target.env, **store}, target.label)


def targets(recipe: str, server: str = "uwsgi", workdir: Path | None = None) -> tuple[Target, Target]:
    """The recipe, and its baseline served with the recipe's own server config (under a
    server other than uWSGI, from a folder made in ``workdir``: ``beside_server_file``)."""
    if server != "uwsgi":
        if workdir is None:
            msg = f"{recipe} under {server}: its baseline is served from a folder made in a workdir"
            raise BenchError(msg)
        return (
            Target(recipe, "recipe", RECIPES / recipe, None, server=server),
            Target(recipe, "baseline", beside_server_file(recipe, server, workdir), None, {}, create_tables, server),
        )
    ini = RECIPES / recipe / "uwsgi.ini"
    env = django_env() if recipe in DJANGO_PREPARE else {}
    prepare = manage if recipe in DJANGO_PREPARE else None
    return (
        Target(recipe, "recipe", RECIPES / recipe, ini, env, prepare),
        Target(recipe, "baseline", BASELINES / recipe, ini, env, prepare),
    )


def connection_per_request(server: str) -> bool:
    """Whether ``wrk`` opens a connection per request to ``server``: under the ASGI servers,
    as uWSGI's http-socket makes it anyway. Kept alive, wrk's connections, opened at once,
    were all accepted by one worker in most rounds under uvicorn and gunicorn (Granian
    spread them), and a round's rate was that of one worker or of four, by chance
    (docs/topics/asgi.rst)."""
    return server != "uwsgi"


def prepared_targets(
    recipe: str,
    server: str,
    stores: tuple[Mapping[str, str], Mapping[str, str]],
    workdir: Path,
    baseline_env: Mapping[str, str] | None = None,
) -> tuple[Target, Target]:
    """``targets``, each prepared on its store (Django's migrations) before it is served;
    the baseline with ``baseline_env`` added to its environment (a variant of it)."""
    recipe_target, baseline = targets(recipe, server, workdir)
    pair = (recipe_target, dataclasses.replace(baseline, env={**baseline.env, **(baseline_env or {})}))
    for target, store in zip(pair, stores, strict=True):
        if target.prepare is not None:
            target.prepare(target, store)
    return pair


def beside_server_file(recipe: str, server: str, workdir: Path) -> Path:
    """A copy of the baseline's folder with the recipe's file for ``server`` beside it.

    uWSGI takes its ini by path; the ASGI recipe's server files are started
    from their own folder (``python serve_uvicorn.py``) and name the app by
    module (``asgi:app``), which Python finds beside the script: so the
    baseline is served from a folder that holds its ``asgi.py`` and the
    recipe's file, the same bytes.
    """
    folder = workdir / f"{recipe}-baseline-{server}"
    shutil.copytree(BASELINES / recipe, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    server_file = COMMANDS[server][-1]  # gunicorn.conf.py, serve_uvicorn.py, serve_granian.py
    shutil.copy2(RECIPES / recipe / server_file, folder / server_file)
    return folder


def create_tables(target: Target, store: Mapping[str, str]) -> None:
    """``python asgi.py``: the ASGI baseline's tables, created before serving, as a migration would."""
    run_python(target.app_dir, ["asgi.py"], store, target.label, timeout=120)


def generator_target() -> Target:
    """The trivial app under the plain WSGI recipe's uwsgi.ini: the generator's ceiling."""
    return Target("trivial", "generator", BASELINES / "trivial", RECIPES / "plain-wsgi" / "uwsgi.ini")


def measure_generator(settings: Settings, progress: Progress, store: Mapping[str, str]) -> dict[str, Any]:
    """wrk against an app that does nothing: what no recipe can exceed on this machine."""
    loads = []
    with serving(generator_target(), store, workers=settings.workers) as server:
        if settings.warm_up_servers:
            run_wrk(server.port, "get", settings.warmup, settings)
        for number in range(1, settings.rounds + 1):
            load = run_wrk(server.port, "get", settings.duration, settings)
            check_load(load, "generator ceiling")
            loads.append(load.as_dict())
            progress.step(f"generator ceiling, round {number}: {load.rps:,.0f} req/s, p99 {load.p99_ms:.1f} ms")
    rps = [load["rps"] for load in loads]
    return {"rounds": loads, "median_rps": median(rps), "spread": spread(rps)}


def measure_pair(
    recipe: str,
    server: str,
    store: str,
    stores: tuple[Mapping[str, str], Mapping[str, str]],
    settings: Settings,
    progress: Progress,
    workdir: Path,
    baseline_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One recipe and its baseline under one server, on one store: throughput, latency, memory,
    start-up. ``baseline_env``: settings of a variant of the baseline (``like_for_like``)."""
    pair = prepared_targets(recipe, server, stores, workdir, baseline_env)
    result: dict[str, Any] = {
        "recipe": recipe,
        "server": server,
        "store": store,
        "baseline_env": dict(baseline_env or {}),
        "operations": {},
        "memory": {},
        "first_request": {},
        "connection_per_request": connection_per_request(server),
    }
    what = recipe if server == "uwsgi" else f"{recipe} under {server}"  # in the progress lines
    close = connection_per_request(server)
    files = workdir / f"{recipe}-{server}-{store}"
    read_ids: dict[str, str] = {}
    with (
        serving(pair[0], stores[0], workers=settings.workers) as recipe_server,
        serving(pair[1], stores[1], workers=settings.workers) as baseline_server,
    ):
        servers = {"recipe": recipe_server, "baseline": baseline_server}
        ids_files: dict[tuple[str, str], Path] = {}
        for role, running in servers.items():
            writes = open_accounts(running.client, settings.write_accounts)
            reads = open_accounts(running.client, settings.read_accounts, settings.read_account_events - 1)
            ids_files[role, "deposit"] = write_ids(Path(f"{files}-{role}-write.txt"), writes)
            ids_files[role, "read"] = write_ids(Path(f"{files}-{role}-read.txt"), reads)
            read_ids[role] = reads[0]
        progress.step(
            f"{what} on {store}: opened {settings.write_accounts + settings.read_accounts} accounts per server"
        )
        for role, running in servers.items() if settings.warm_up_servers else ():
            for operation in OPERATIONS:  # warm every worker up: imports, connections, caches
                run_wrk(
                    running.port,
                    operation,
                    settings.warmup,
                    settings,
                    ids_files[role, operation],
                    close_connections=close,
                )
        for operation in OPERATIONS:
            result["operations"][operation] = {"recipe": [], "baseline": [], "ratios": []}
        for number in range(1, settings.rounds + 1):
            for operation in OPERATIONS:
                measured = result["operations"][operation]
                loads = {}
                # Alternate who goes first, so that a drift in the machine's load favours neither.
                order = list(servers.items()) if number % 2 else list(servers.items())[::-1]
                for role, running in order:
                    load = run_wrk(
                        running.port,
                        operation,
                        settings.duration,
                        settings,
                        ids_files[role, operation],
                        close_connections=close,
                    )
                    try:
                        check_load(load, f"{what} {role} {operation} on {store}")
                    except BenchError as error:
                        raise running.failure(error) from None
                    loads[role] = load
                    measured[role].append(load.as_dict())
                ratio = loads["recipe"].rps / loads["baseline"].rps
                measured["ratios"].append(ratio)
                progress.step(
                    f"{what} on {store}, {operation} round {number}: "
                    f"recipe {loads['recipe'].rps:,.0f} req/s (p50 {loads['recipe'].p50_ms:.1f} ms, "
                    f"p99 {loads['recipe'].p99_ms:.1f} ms), baseline {loads['baseline'].rps:,.0f} req/s "
                    f"(p50 {loads['baseline'].p50_ms:.1f} ms): ratio {ratio:.2f}"
                )
        for role, running in servers.items():
            result["memory"][role] = worker_memory(running)
    for operation in OPERATIONS:
        summarise(result["operations"][operation])
    memory = result["memory"]
    progress.step(
        f"{what} on {store}: worker RSS after warm-up {memory['recipe']['median']['rss']:.0f} MiB "
        f"(baseline {memory['baseline']['median']['rss']:.0f} MiB), "
        f"USS {memory['recipe']['median']['uss']:.0f} MiB (baseline {memory['baseline']['median']['uss']:.0f} MiB)"
    )
    for target, settings_of_store in zip(pair, stores, strict=True):
        samples = [
            fork_to_first_request(target, settings_of_store, f"/accounts/{read_ids[target.role]}")
            for _ in range(settings.first_request_repeats)
        ]
        result["first_request"][target.role] = {
            "samples": samples,
            "median_s": median([sample["fork_to_first_request_s"] for sample in samples]),
        }
    first = result["first_request"]
    progress.step(
        f"{what} on {store}: fork to first request served {first['recipe']['median_s'] * 1000:.0f} ms "
        f"(baseline {first['baseline']['median_s'] * 1000:.0f} ms)"
    )
    return result


def summarise(measured: dict[str, Any]) -> None:
    """Medians over the rounds, and how much the rounds disagreed."""
    for role in ("recipe", "baseline"):
        loads = measured[role]
        measured[f"{role}_median"] = {
            key: median([load[key] for load in loads]) for key in ("rps", "p50_ms", "p90_ms", "p99_ms")
        }
        measured[f"{role}_spread"] = spread([load["rps"] for load in loads])
    measured["ratio"] = median(measured["ratios"])
    measured["ratio_spread"] = spread(measured["ratios"])


__all__ = [
    "LIKE_FOR_LIKE",
    "OPERATIONS",
    "SERVERS",
    "WEB_RECIPES",
    "BenchServer",
    "connection_per_request",
    "measure_generator",
    "measure_pair",
    "prepared_targets",
    "servers_of",
    "stores_of",
]
