"""RQ worker classes that run each job on the application of the process it runs in.

A project's ``workers.py`` (or a Django project's ``rq_workers.py``) subclasses
``RecipeWorker`` with its job names and how it prepares its store, opens and
closes its application, and combines it with RQ's classes: ``ApplicationPerJob``
with ``rq.worker.Worker`` (a work horse forked for every job) or
``rq.worker.SpawnWorker`` (a new interpreter for every job), each job with an
application of its own, closed before the horse exits; ``rq.worker.SimpleWorker``
(jobs in the worker process) with one application kept from the first job to
the worker's end, closed in its ``teardown``.

The worker process of a forking class never holds an application, so no
horse can inherit one. What every class gets from here, each explained where
it is done: JSON jobs only, naming only the project's job functions; the stop
signals never lost, whenever they come; a warm shutdown that loses no job;
a job whose horse died run again, a bounded number of times; a pool's worker
that stops when its pool is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any, ClassVar

import rq.worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, DEFAULT_SERIALIZER_CLASS
from rq.job import Job
from rq.logutils import setup_loghandlers
from rq.queue import Queue
from rq.serializers import DefaultSerializer, JSONSerializer, resolve_serializer
from rq.worker import WorkerStatus

from bankaccounts.prefork_signals import hold_in_forked_children, release

#: Seconds an idle worker waits for a job before it looks again for a stop request.
STOP_CHECK_INTERVAL = 1
#: How many times a job whose work horse died (SIGKILL: the out-of-memory killer,
#: a stop sent to every process) is run again before it is failed. Safe: every
#: command records its job id with its effects, so a deposit the horse had made
#: is not made again. Bounded: a job that kills every horse it reaches must end.
HORSE_DEATH_RETRIES = 2


class UnknownJobError(LookupError):
    """A job names a function that is not one of ``jobs.py``'s."""


def json_only(serializer: Any) -> type[JSONSerializer]:
    """JSON, whatever RQ's default: unpickling a job runs any code its sender chose."""
    # The CLI passes its default as a dotted name, rq worker-pool as the class.
    if serializer in (None, DEFAULT_SERIALIZER_CLASS, DefaultSerializer):
        return JSONSerializer
    if resolve_serializer(serializer) is not JSONSerializer:
        msg = f"these workers accept JSON jobs only, not {serializer!r}: leave out --serializer or pass json"
        raise ValueError(msg)
    return JSONSerializer


# RQ installs a worker's SIGINT and SIGTERM handlers only after it has started
# (and forked) its scheduler. Until then a pool's worker has Python's default
# SIGINT handler, and the pool stops its workers with SIGINT: the
# KeyboardInterrupt it raises, when it lands in a fork callback while the worker
# forks its scheduler, is printed as "Exception ignored" and dropped. The worker
# then ran on, and its pool waited for it for ever (2 starts in 15, under load).
# So these workers install RQ's handlers first thing in bootstrap(); the
# handler only sets a flag the work loop looks at (see _shutdown below).
#
# A process the worker forks (a work horse, the scheduler) must not keep that
# handler: it would note a stop in its copy of the worker, which nobody reads,
# and the SIGTERM that stops the scheduler was lost (the worker then waited for
# its scheduler for ever). So the worker holds both signals across every fork,
# and the child sets them as RQ's horse sets itself before it lets them in.

#: The signals that stop a worker (SIGTERM) or its whole process group (Ctrl+C).
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})

# The same holds for a pool's worker: the pool forks it and may send SIGINT at
# once, and CPython drops a signal that reaches a child between the fork and
# its own set-up of signals (the worker then ran on, and the pool waited for it
# for ever: twice in one CI run). So whatever imports this module (the pool, or
# a lone worker) forks its children with both signals held; a worker lets them
# in once RQ's handlers are in place (bootstrap), any other child once it has
# set them as a horse does.
hold_in_forked_children(STOP_SIGNALS)


def _child_starts_like_a_horse() -> None:
    """In a child of the worker: SIGINT ignored, SIGTERM's default action, then
    the signals that came during the fork are let in."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    release(STOP_SIGNALS)


class RecipeWorker(rq.worker.BaseWorker):
    """What every class shares: JSON, the store made ready at start, the application per job.

    A project subclasses it with what is its own: ``job_names``, and the three
    hooks below.
    """

    #: The only functions these workers run, by the name a client enqueues (``module.function``).
    job_names: ClassVar[frozenset[str]] = frozenset()

    def prepare_store(self) -> None:
        """In the worker process, as it starts, before any fork: make the store ready
        (create its tables), leaving no connection open for a child to inherit."""

    def open_application(self) -> None:
        """Where a job is about to run (the horse, or the worker itself): make sure this
        process has its application."""
        raise NotImplementedError

    def close_application(self) -> None:
        """Where jobs ran: close this process's application, and its connections."""
        raise NotImplementedError

    def __init__(self, *args: Any, serializer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, serializer=json_only(serializer), **kwargs)  # type: ignore[misc]  # RQ passes it by keyword
        # Started by ``rq worker-pool``: the pool's pid, to notice that it is gone.
        pool = multiprocessing.parent_process()
        self._pool_pid = None if pool is None else pool.pid

    def bootstrap(
        self,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # Act on a stop request from the start (see the notes above STOP_SIGNALS):
        # one that came while the signals were held is acted on now.
        self._install_signal_handlers()  # type: ignore[no-untyped-call]  # RQ's, unannotated
        release(STOP_SIGNALS)
        hold_in_forked_children(STOP_SIGNALS)  # for its own children; its callbacks run first
        os.register_at_fork(after_in_child=_child_starts_like_a_horse)
        # Log where applications are constructed and closed, next to RQ's own lines.
        setup_loghandlers(logging_level or "INFO", date_format, log_format, name="bankaccounts")
        self.prepare_store()  # in the worker process, before it registers and before any fork
        super().bootstrap(logging_level, date_format, log_format)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        # Runs where the job will run (the horse, or the worker itself), inside
        # RQ's error handling: whatever fails here fails the job, with its message.
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        if job.func_name not in self.job_names:
            msg = f"{job.func_name!r} is not a job of these workers: they run {', '.join(sorted(self.job_names))}"
            raise UnknownJobError(msg)
        self.open_application()

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        # In the worker, after its horse died mid-job, before RQ fails the job:
        # RQ retries a failed job that has retries left (the retry= of enqueue,
        # which would retry domain errors too); give one to a job whose horse died.
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[no-untyped-call]
        deaths = int(job.meta.get("horse_deaths", 0)) + 1
        job.meta["horse_deaths"] = deaths
        job.save_meta()
        if deaths <= HORSE_DEATH_RETRIES and not job.should_retry:
            job.retries_left, job.retry_intervals = 1, [0]
            self.log.warning(
                "Worker %s: job %s lost its work horse (%d of %d): running it again",
                self.name,
                job.id,
                deaths,
                HORSE_DEATH_RETRIES + 1,
            )

    # Warm shutdown without losing a job. On SIGTERM or SIGINT, RQ's worker
    # raises StopRequested from the signal handler unless it is running a job,
    # to break out of a blocking wait for one. When the signal lands just after
    # the wait has taken a job from the queue, and before the job starts, the
    # exception drops that job: it stays in the queue's intermediate list, never
    # runs, and is failed later as "stuck" (rq/rq#2236; 17 warm shutdowns in 110
    # under a steady stream of short jobs, measured here). These two methods
    # never raise: the handler sets a flag, and the wait for a job is cut into
    # slices that end at the flag. A job taken in the same instant runs.

    def _shutdown(self) -> None:
        if self.get_state() == WorkerStatus.BUSY:
            super()._shutdown()  # type: ignore[no-untyped-call]  # RQ's own: finish the job, then stop
        else:
            self._stop_requested = True

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        if timeout is None:  # burst mode: the wait does not block
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        deadline = None if max_idle_time is None else time.monotonic() + max_idle_time
        while not self._stop_requested and not self._orphaned():
            # RQ returns None when a wait of max_idle_time finds nothing.
            result = super().dequeue_job_and_maintain_ttl(STOP_CHECK_INTERVAL, max_idle_time=STOP_CHECK_INTERVAL)
            if result is not None:
                return result
            if deadline is not None and time.monotonic() >= deadline:
                break
        return None  # the work loop then stops

    # A pool's worker outlives its pool if a SIGTERM ends the pool while it is
    # still starting its workers: RQ 3.0's pool installs its handler only after
    # it has started them, so the signal's default action ends it and leaves
    # them running, taking jobs, with nobody to stop them. Such a worker sees
    # its parent change at its next look for a stop request, and stops.

    def _orphaned(self) -> bool:
        if self._pool_pid is None or os.getppid() == self._pool_pid:
            return False
        self.log.warning("Worker %s: its pool (pid %s) is gone; stopping", self.name, self._pool_pid)
        return True


class ApplicationPerJob(RecipeWorker):
    """For classes whose horse runs one job and exits: close its application before it does."""

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        try:
            return super().perform_job(job, queue, execution)
        finally:
            # The horse ends with os._exit(), which runs no clean-up: say goodbye to the database now.
            self.close_application()
