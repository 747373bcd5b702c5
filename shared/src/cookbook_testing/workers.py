"""Real task-queue workers, run as the Celery and RQ recipes' READMEs run them.

Each worker consumes a queue of its own, named at random, so that no other
test's (or benchmark run's) messages reach it. Both are ``ManagedProcess``es:
started in a session of their own, stopped with a bounded graceful stop.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from cookbook_testing.processes import ManagedProcess

__all__ = ["CeleryWorker", "DjangoRQWorker", "RQWorker", "check_logs"]


def _queue_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


#: Seconds a prefork child may wait, once it has taken its last task, for the main
#: process to count that task's result before it exits (billiard's pool.py:
#: GUARANTEE_MESSAGE_CONSUMPTION_RETRY_LIMIT x _INTERVAL, 300 x 0.1 s). A warm shutdown
#: can take that long on top of the tasks in hand: a CI run saw a child wait it out.
BILLIARD_RESULT_WAIT_SECONDS = 30.0


class CeleryWorker(ManagedProcess):
    """``celery -A APP worker --pool POOL`` run from ``cwd``; ready when it says so.

    ``stop`` waits, by default, 15 s more than billiard's wait for a prefork child."""

    def __init__(
        self,
        cwd: Path,
        env: Mapping[str, str],
        *,
        app: str = "tasks",
        pool: str = "prefork",
        concurrency: int = 4,
        queue: str | None = None,
        extra_args: Sequence[str] = (),
        kind: str | None = None,
    ) -> None:
        self.queue = queue or _queue_name("test")
        args = ["-A", app, "worker", "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO"]
        args += ["--queues", self.queue, "--hostname", f"{self.queue}@%h", "--without-gossip", "--without-mingle"]
        super().__init__(kind or f"celery-{pool}", "celery", [*args, *extra_args], cwd, dict(env))

    def is_ready(self) -> bool:
        return " ready." in self.log()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = BILLIARD_RESULT_WAIT_SECONDS + 15.0) -> int:
        return super().stop(signum, timeout)


class _RQWorkers(ManagedProcess):
    """RQ workers, one (``pool=0``) or a pool of ``pool``: ready when every one listens."""

    pool = 0

    def is_ready(self) -> bool:
        return self.log().count("*** Listening on") >= max(self.pool, 1)


class RQWorker(_RQWorkers):
    """``rq worker -w CLASS QUEUE`` run from ``cwd``, or with ``pool=N`` ``rq
    worker-pool --num-workers N``; ready when every worker listens.

    ``worker_class`` is a dotted name; ``path`` adds folders to the import path
    the workers load it from (``rq``'s ``--path``).
    """

    def __init__(
        self,
        cwd: Path,
        env: Mapping[str, str],
        *,
        worker_class: str,
        queue: str | None = None,
        pool: int = 0,
        path: Sequence[str] = (),
        kind: str | None = None,
    ) -> None:
        self.queue = queue or _queue_name("test")
        self.pool = pool
        command = ["worker-pool", "--num-workers", str(pool)] if pool else ["worker"]
        paths = [argument for folder in path for argument in ("--path", folder)]
        args = [*command, *paths, "-w", worker_class, self.queue]
        super().__init__(kind or f"rq-{worker_class.rsplit('.', 1)[-1]}", "rq", args, cwd, dict(env))


class DjangoRQWorker(_RQWorkers):
    """``python manage.py rqworker QUEUE`` (django-rq) run from a Django project's folder, or
    with ``pool=N`` ``rqworker-pool --num-workers N``; ready when every worker listens.

    ``worker_class``: a dotted name, for ``--worker-class``; by default, the settings'.
    The queue must be one of the settings' ``RQ_QUEUES``: give its name in ``env``.
    """

    def __init__(
        self,
        cwd: Path,
        env: Mapping[str, str],
        *,
        queue: str,
        worker_class: str | None = None,
        pool: int = 0,
        kind: str | None = None,
    ) -> None:
        self.queue = queue
        self.pool = pool
        command = ["rqworker-pool", "--num-workers", str(pool)] if pool else ["rqworker"]
        chosen = ["--worker-class", worker_class] if worker_class else []
        name = (worker_class or "default").rsplit(".", 1)[-1]
        super().__init__(kind or f"django-rq-{name}", "python", ["manage.py", *command, *chosen, queue], cwd, dict(env))


def check_logs(request: pytest.FixtureRequest, workers: Sequence[ManagedProcess]) -> None:
    """After a test, once its workers stopped: they logged no traceback and no signal
    handler that raised, unless the test is marked ``logs_errors(reason)``. Celery and
    RQ log such errors and go on, so without this a broken hook passes every test."""
    if request.node.get_closest_marker("logs_errors"):
        return
    errors = {f"{worker.kind} (pid {worker.pid})": worker.errors_logged() for worker in workers}
    errors = {worker: lines for worker, lines in errors.items() if lines}
    assert not errors, f"workers logged errors: {errors}; mark the test logs_errors(reason) if it means them"
