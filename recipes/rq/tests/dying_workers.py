"""A test-only worker whose horse dies after the job's commit, before RQ records the success.

That is how an RQ job can run twice: the parent sees a horse killed mid-job
and fails the job ("Work-horse terminated unexpectedly"), though the deposit
is in the database; someone requeues it. SIGKILL stands in for the out-of-memory
killer or a stop that signals every process of the service.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import workers


class DiesAfterDepositWorker(workers.Worker):
    def handle_job_success(self, job: Any, *args: Any, **kwargs: Any) -> None:
        # In the horse, after the job has returned (its events are recorded).
        if job.func_name == "jobs.deposit":
            os.kill(os.getpid(), signal.SIGKILL)
        super().handle_job_success(job, *args, **kwargs)


class DiesOnceAfterDepositWorker(workers.Worker):
    """Its first deposit's horse dies after the commit; the marker file says it has happened."""

    def handle_job_success(self, job: Any, *args: Any, **kwargs: Any) -> None:
        marker = Path(os.environ["DIED_ONCE_MARKER"])
        if job.func_name == "jobs.deposit" and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        super().handle_job_success(job, *args, **kwargs)
