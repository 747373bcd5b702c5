"""Test helpers: real ``rq worker`` and ``rq worker-pool`` processes."""

from __future__ import annotations

import uuid
from pathlib import Path

from cookbook_testing.processes import ManagedProcess

RECIPE_DIR = Path(__file__).resolve().parent.parent
WORKER_CLASSES = ["Worker", "SimpleWorker", "SpawnWorker"]


class RQWorker(ManagedProcess):
    """``rq worker -w workers.<class> <queue>`` run from the recipe folder, as the README says.

    ``pool=4`` runs ``rq worker-pool -n 4`` instead. ``worker_class`` may name a
    class in ``tests/`` (``"pausing_workers.PausingWorker"``), which is then put
    on the worker's import path too.
    """

    def __init__(
        self, env: dict[str, str], *, worker_class: str = "Worker", queue: str | None = None, pool: int = 0
    ) -> None:
        self.queue = queue or f"test-{uuid.uuid4().hex[:12]}"
        self.pool = pool
        dotted = worker_class if "." in worker_class else f"workers.{worker_class}"
        path = [] if dotted.startswith("workers.") else ["--path", ".", "--path", "tests"]
        command = ["worker-pool", "--num-workers", str(pool)] if pool else ["worker"]
        # A queue of its own, so no other test's jobs reach this worker.
        super().__init__(f"rq-{worker_class}", "rq", [*command, *path, "-w", dotted, self.queue], RECIPE_DIR, env)

    def is_ready(self) -> bool:
        return self.log().count("*** Listening on") >= max(self.pool, 1)
