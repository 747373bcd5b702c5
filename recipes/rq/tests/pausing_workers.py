"""Test-only worker classes that pause, and say so in the log, at the moments a signal is tested at.

- In a job: the job has started (RQ marked it so, the application exists) and
  runs on for a while; a warm shutdown must let it finish.
- Between taking a job from the queue and starting it: a SIGTERM that lands
  there is what loses a job under RQ's own warm-shutdown handling
  (rq/rq#2236). The gap is a few Redis round trips wide, so a test cannot aim
  at it; these classes widen it to seconds, so a test can signal exactly there.
"""

from __future__ import annotations

import time
from typing import Any

from rq.worker import BaseWorker

import workers

PAUSE = 2  # seconds; a test sends its signal within them


class _PauseAfterTakingAJob(BaseWorker):
    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        taken = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        if taken is not None:
            self.log.info("took job %s; pausing before it starts", taken[0].id)
            time.sleep(PAUSE)
        return taken


class PausingWorker(_PauseAfterTakingAJob, workers.Worker):
    """The recipe's worker, paused in the gap."""


class _PauseInTheJob(BaseWorker):
    def prepare_job_execution(self, job: Any, remove_from_intermediate_queue: bool = False) -> None:
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        self.log.info("started job %s; pausing in it", job.id)
        time.sleep(PAUSE)


class WorkerPausingInJobs(_PauseInTheJob, workers.Worker):
    pass


class SimpleWorkerPausingInJobs(_PauseInTheJob, workers.SimpleWorker):
    pass


class SpawnWorkerPausingInJobs(_PauseInTheJob, workers.SpawnWorker):
    pass


class _RQShutdown(workers.Worker):
    """The recipe's worker with RQ's own warm-shutdown handling put back."""

    _shutdown = BaseWorker._shutdown
    dequeue_job_and_maintain_ttl = BaseWorker.dequeue_job_and_maintain_ttl


class PausingRQShutdownWorker(_PauseAfterTakingAJob, _RQShutdown):
    """RQ's warm-shutdown handling, paused in the gap."""
