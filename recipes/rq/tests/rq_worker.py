"""Test helpers: this recipe's ``rq worker`` and ``rq worker-pool`` processes (the test kit's ``RQWorker``)."""

from __future__ import annotations

from pathlib import Path

from cookbook_testing.workers import RQWorker

RECIPE_DIR = Path(__file__).resolve().parent.parent
WORKER_CLASSES = ["Worker", "SimpleWorker", "SpawnWorker"]

__all__ = ["RECIPE_DIR", "WORKER_CLASSES", "RQWorker", "recipe_worker"]


def recipe_worker(
    env: dict[str, str], *, worker_class: str = "Worker", queue: str | None = None, pool: int = 0
) -> RQWorker:
    """``rq worker -w workers.<class> <queue>`` run from the recipe folder, as the README says.

    ``pool=4`` runs ``rq worker-pool -n 4`` instead. ``worker_class`` may name a
    class in ``tests/`` (``"pausing_workers.PausingWorker"``), which is then put
    on the worker's import path too.
    """
    dotted = worker_class if "." in worker_class else f"workers.{worker_class}"
    path = [] if dotted.startswith("workers.") else [".", "tests"]
    return RQWorker(RECIPE_DIR, env, worker_class=dotted, queue=queue, pool=pool, path=path, kind=f"rq-{worker_class}")
