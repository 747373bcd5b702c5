"""Test helpers: a real Celery worker process, and a client that calls tasks by name."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from cookbook_testing.processes import ManagedProcess

RECIPE_DIR = Path(__file__).resolve().parent.parent


class CeleryWorker(ManagedProcess):
    """``celery -A tasks worker`` run from the recipe folder, as the README says."""

    def __init__(
        self, env: dict[str, str], *, pool: str = "prefork", concurrency: int = 4, queue: str | None = None
    ) -> None:
        self.queue = queue or f"test-{uuid.uuid4().hex[:12]}"

        args = ["-A", "tasks", "worker", "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO"]
        # A queue of its own, so no other test's messages reach this worker.
        args += ["--queues", self.queue, "--hostname", f"{self.queue}@%h", "--without-gossip", "--without-mingle"]
        super().__init__(f"celery-{pool}", "celery", args, RECIPE_DIR, env)

    def is_ready(self) -> bool:
        return " ready." in self.log()


class Tasks:
    """Calls tasks by name on one worker's queue, and waits for results (bounded)."""

    def __init__(self, client: Celery, worker: CeleryWorker) -> None:
        self.client = client
        self.worker = worker

    def send(self, name: str, *args: object) -> AsyncResult:
        return self.client.send_task(name, args=list(args), queue=self.worker.queue)

    def call(self, name: str, *args: object, timeout: float = 60) -> Any:
        return self.send(name, *args).get(timeout=timeout)
