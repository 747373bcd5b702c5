"""The recipe's worker classes, less the application: what the baseline's jobs run on.

Started from this folder as ``rq worker-pool -n 4 -w baseline_workers.<class>``
with this folder, then ``recipes/rq``, on ``PYTHONPATH`` (in that order, so
that ``jobs`` is this folder's and ``workers`` the recipe's). Each class is
the recipe's own (JSON only, only the functions of ``jobs``, its warm
shutdown, a fork or a new interpreter per job as RQ's class does) with the
one layer that deals with the event-sourced application skipped: no
application constructed per job or per worker, and the baseline's tables
created at start instead of the event store's. The connection to the
database is the job module's, per process, closed where the recipe closes its
application: at the end of each job in a work horse, when ``SimpleWorker`` stops.
"""

from __future__ import annotations

from typing import Any

from rq.job import Job
from rq.queue import Queue

import jobs  # this folder's
import workers  # the recipe's

__all__ = ["SimpleWorker", "SpawnWorker", "Worker"]


# The recipe's bootstrap runs as it is (its signal set-up is the warm shutdown
# the baseline keeps: without it a pool's workers held SIGTERM for ever, and
# every stop waited for the 30 s kill), creating the baseline's tables where
# the recipe creates the event store's.
workers.create_schema = jobs.create_schema


class _Direct:
    """Skips the recipe's application layer (``workers._RecipeWorker``), keeps the rest."""

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        skipped = super(workers._RecipeWorker, self)  # type: ignore[misc]
        skipped.prepare_job_execution(job, remove_from_intermediate_queue)
        if job.func_name not in workers.JOB_NAMES:
            msg = f"{job.func_name!r} is not a job of these workers: they run {', '.join(sorted(workers.JOB_NAMES))}"
            raise workers.UnknownJobError(msg)


class _ConnectionPerJob(_Direct):
    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        try:
            return super().perform_job(job, queue, execution)  # type: ignore[misc]
        finally:
            jobs.close_connection()  # the horse ends with os._exit(): close it now


class Worker(_ConnectionPerJob, workers.Worker):
    """A work horse forked for every job, with a connection of its own."""


class SpawnWorker(_ConnectionPerJob, workers.SpawnWorker):
    """A new interpreter for every job, with a connection of its own."""


class SimpleWorker(_Direct, workers.SimpleWorker):
    """Jobs run in the worker process, on one connection kept from the first job to the end."""

    def teardown(self) -> None:
        super().teardown()
        jobs.close_connection()
