"""Sixteen writers on one account: writers that take turns against writers that race.

Each SQL web recipe on PostgreSQL is served twice side by side under its own
``uwsgi.ini`` (4 workers): with ``AGGREGATE_LOCKS=on`` (the default: writers
of one account wait for its lock, see ``bankaccounts.aggregate_locks``) and
with ``off`` (optimistic concurrency and retries alone). wrk's 16 connections
deposit into one account of the server measured (a new one each time); the
two servers are measured in turn, back to back, and who goes first alternates.

Measured: throughput, p50 and p99 latency, and answers by status. A 409 is a
deposit that was still losing its race when its time budget (``REQUEST_TIMEOUT``)
ran out: nothing was wrong with it, so every 409 here is a failure of fairness.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness import (
    BENCH,
    BenchError,
    BenchServer,
    Load,
    Progress,
    Settings,
    median,
    open_accounts,
    run_wrk,
    serving,
)
from web import targets

#: The recipes whose writers can take a database lock (PostgreSQL); on SQLite
#: and Cassandra there is no lock per account to take.
CONTENTION_RECIPES = ["plain-wsgi", "flask-sqlalchemy", "pyramid-sqlalchemy", "django-orm"]
ONE_ACCOUNT_SCRIPT = BENCH / "wrk" / "one_account.lua"
MODES = ("on", "off")


def measure(recipe: str, database_url: str, settings: Settings, progress: Progress) -> dict[str, Any]:
    """The recipe with and without aggregate locks, on one database (each server has its own account)."""
    recipe_target = targets(recipe)[0]
    store = {"DATABASE_URL": database_url}
    if recipe_target.prepare is not None:
        recipe_target.prepare(recipe_target, store)
    servers_targets = {
        mode: dataclasses.replace(recipe_target, env={**recipe_target.env, "AGGREGATE_LOCKS": mode}) for mode in MODES
    }
    result: dict[str, Any] = {"recipe": recipe, "store": "postgresql", "locks": {mode: [] for mode in MODES}}
    with (
        serving(servers_targets["on"], store, workers=settings.workers) as locked,
        serving(servers_targets["off"], store, workers=settings.workers) as racing,
    ):
        servers = {"on": locked, "off": racing}
        for mode, server in servers.items():  # warm every worker up
            deposit_into_a_new_account(recipe, mode, server, settings.warmup, settings)
        for number in range(1, settings.rounds + 1):
            order = list(MODES) if number % 2 else list(MODES)[::-1]
            for mode in order:
                load = deposit_into_a_new_account(recipe, mode, servers[mode], settings.duration, settings)
                result["locks"][mode].append(load.as_dict())
                progress.step(
                    f"{recipe}, 16 writers on one account, locks {mode}, round {number}: {load.rps:,.0f} req/s, "
                    f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, answers {describe(load.statuses)}"
                )
    summarise(result)
    return result


def deposit_into_a_new_account(recipe: str, mode: str, server: BenchServer, seconds: float, settings: Settings) -> Load:
    """wrk's connections deposit 1 into one new account for ``seconds``; then its balance is checked.

    A new account each time: reading an account costs more the more events it
    has, and every measurement should start from the same length.
    """
    account = open_accounts(server.client, 1)[0]
    load = run_wrk(server.port, account, seconds, settings, script=ONE_ACCOUNT_SCRIPT)
    # A smoke run's second of 16 racing writers may end before any of them is
    # answered on a machine busy with the whole test matrix (Django, locks off,
    # once): what it checks is the code path, and the balance below.
    if (load.requests == 0 or not load.statuses) and not settings.quick:
        raise server.failure(BenchError(f"{recipe}, locks {mode}: no answers counted"))
    # Racing or not, every deposit answered 200 was applied once. wrk stops
    # without reading the answers still on their way (at most one per
    # connection), and those deposits were applied too.
    balance = server.client.get(f"/accounts/{account}").json["balance"]
    applied = load.statuses.get("200", 0)
    if not applied <= balance <= applied + settings.connections:
        msg = (
            f"{recipe}, locks {mode}: balance {balance}, but {applied} deposits of 1 answered 200 "
            f"(and at most {settings.connections} more were unread when wrk stopped)"
        )
        raise BenchError(msg)
    return load


def describe(statuses: dict[str, int]) -> str:
    return ", ".join(f"{count:,} x {status}" for status, count in sorted(statuses.items()))


def summarise(result: dict[str, Any]) -> None:
    for mode in MODES:
        loads = result["locks"][mode]
        answers = sum(load["requests"] for load in loads)
        conflicts = sum(load["statuses"].get("409", 0) for load in loads)
        others = sum(
            count for load in loads for status, count in load["statuses"].items() if status not in {"200", "409"}
        )
        result[f"{mode}_median"] = {
            key: median([load[key] for load in loads]) for key in ("rps", "p50_ms", "p99_ms", "max_ms")
        }
        result[f"{mode}_answers"] = {"all": answers, "409": conflicts, "other_failures": others}


__all__ = ["CONTENTION_RECIPES", "measure"]
