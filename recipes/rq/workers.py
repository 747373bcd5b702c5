"""RQ worker classes that give each job the application of the process it runs in.

Start one from this folder (``rq`` adds the current folder to the import path)::

    rq worker -w workers.Worker        # RQ's default: forks a work horse for every job
    rq worker -w workers.SimpleWorker  # runs every job in the worker process itself
    rq worker -w workers.SpawnWorker   # starts a new interpreter (posix_spawn) for every job

Where each one constructs and closes the application:

================  ==============================  ======================================
class             runs each job in                the application
================  ==============================  ======================================
``Worker``        a child forked for the job      constructed in the child before the
                                                  job, closed after it: one per job
``SpawnWorker``   a new interpreter for the job   the same: one per job
``SimpleWorker``  the worker process              constructed before its first job,
                                                  closed when the worker stops
================  ==============================  ======================================

The worker process of a forking class never holds an application, so no
horse can inherit one (if it did, ``get_or_init_application()`` in the horse
would raise ``ApplicationForkedError``, and the job would fail with it). Every
class creates the schema when it starts, with a short-lived application
closed before any fork, so a wrong ``DATABASE_URL`` stops the worker before it
takes a job. ``SimpleWorker`` constructs its application at the first job
rather than at start: ``--with-scheduler`` (and ``rq worker-pool``, which
always adds it) forks a scheduler process from the worker after start, and
that process must not inherit an application either.

All three accept JSON jobs only, and only the functions of ``jobs.py``.
What else every class does, and why (stop signals never lost, a warm
shutdown that loses no job, a job whose horse died run again), is in the
shared ``bankaccounts/rq_workers.py``; this file says what is this recipe's.
"""

from __future__ import annotations

import rq.worker
from rq.job import Job
from rq.logutils import setup_loghandlers
from rq.queue import Queue

import jobs
from bankaccounts.application import SCHEMA_EXISTS, create_schema
from bankaccounts.lifecycle import close_application, get_or_init_application
from bankaccounts.rq_workers import HORSE_DEATH_RETRIES, ApplicationPerJob, RecipeWorker

__all__ = ["HORSE_DEATH_RETRIES", "SimpleWorker", "SpawnWorker", "Worker"]

#: Settings for the applications the workers construct: the tables exist (the
#: worker created them at start), and one job at a time needs one connection.
APPLICATION_ENV = {**SCHEMA_EXISTS, "POSTGRES_POOL_SIZE": "1"}


class _BankJobs(RecipeWorker):
    """This recipe's jobs, schema and application."""

    job_names = frozenset(f"jobs.{name}" for name in jobs.__all__)

    def prepare_store(self) -> None:
        create_schema()  # with a short-lived application, closed before the first fork

    def open_application(self) -> None:
        get_or_init_application(env=APPLICATION_ENV)

    def close_application(self) -> None:
        close_application()


class Worker(ApplicationPerJob, _BankJobs, rq.worker.Worker):
    """RQ's default worker: a work horse forked for every job, with an application of its own."""


class SpawnWorker(ApplicationPerJob, _BankJobs, rq.worker.SpawnWorker):
    """A new interpreter for every job (no fork at all), with an application of its own."""

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # The new interpreter has no logging set up (bootstrap ran in the worker
        # process): log as a forked horse would, so each job's application shows.
        for name in ("rq.worker", "bankaccounts"):
            setup_loghandlers("INFO", name=name)
        super().main_work_horse(job, queue)


class SimpleWorker(_BankJobs, rq.worker.SimpleWorker):
    """Jobs run in the worker process, on one application kept from the first job to the end."""

    def teardown(self) -> None:
        super().teardown()
        self.close_application()
