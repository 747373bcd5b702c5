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

import jobs  # this folder's
import workers  # the recipe's

__all__ = ["SimpleWorker", "SpawnWorker", "Worker"]


class _Direct:
    """The recipe's hooks for its store and application, replaced: the baseline's tables
    at start (its bootstrap runs as it is: its signal set-up is the warm shutdown the
    baseline keeps), no application, and the job module's connection closed where the
    recipe closes its application."""

    def prepare_store(self) -> None:
        jobs.create_schema()

    def open_application(self) -> None:
        pass  # the jobs write through their module's connection

    def close_application(self) -> None:
        jobs.close_connection()


class Worker(_Direct, workers.Worker):
    """A work horse forked for every job, with a connection of its own."""


class SpawnWorker(_Direct, workers.SpawnWorker):
    """A new interpreter for every job, with a connection of its own."""


class SimpleWorker(_Direct, workers.SimpleWorker):
    """Jobs run in the worker process, on one connection kept from the first job to the end."""
