"""Test helper: a client that calls a worker's tasks by name (the worker: the test kit's ``CeleryWorker``)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.result import AsyncResult

from cookbook_testing.workers import CeleryWorker


class Tasks:
    """Calls tasks by name on one worker's queue, and waits for results (bounded)."""

    def __init__(self, client: Celery, worker: CeleryWorker) -> None:
        self.client = client
        self.worker = worker

    def send(self, name: str, *args: object) -> AsyncResult:
        return self.client.send_task(name, args=list(args), queue=self.worker.queue)

    def call(self, name: str, *args: object, timeout: float = 60) -> Any:
        return self.send(name, *args).get(timeout=timeout)
