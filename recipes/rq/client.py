"""A client: enqueues the jobs by name and waits for their results. It does not import ``jobs.py``.

``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) names the server, the
same one the workers use. Jobs are JSON, like the workers expect. A failed
job raises ``JobFailedError`` here, with the error the job raised; the job
stays in the queue's failed registry, where ``rq info`` counts it.

Run it to check a deployment: it opens an account, enqueues concurrent
deposits, waits for all of them, and prints the account::

    python client.py --deposits 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

#: Seconds a job may run before its worker stops it (RQ's default is 180).
JOB_TIMEOUT = 30
#: Seconds results stay readable in Redis; failures stay a week, for a person to look at.
RESULT_TTL = 3600
FAILURE_TTL = 7 * 24 * 3600
#: Seconds of one blocking read of a result. redis-py 8 gives every connection
#: a 5 s socket timeout, so a single longer wait would end in
#: ``redis.exceptions.TimeoutError``: ``result()`` waits in slices instead.
WAIT_SLICE = 2


class JobFailedError(RuntimeError):
    """A job failed. ``str()`` is its error's last line; ``traceback`` is all of it."""

    def __init__(self, job_id: str, traceback: str) -> None:
        last_line = traceback.strip().splitlines()[-1] if traceback.strip() else "no error recorded"
        super().__init__(f"job {job_id} failed: {last_line}")
        self.job_id = job_id
        self.traceback = traceback


def job_queue(name: str = "default", connection: Redis | None = None) -> Queue:
    if connection is None:
        connection = Redis.from_url(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return Queue(name, connection=connection, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT)


def enqueue(queue: Queue, name: str, *args: object) -> Job:
    """Enqueue the job ``jobs.<name>``; no retries: a failure is an answer, not a glitch."""
    return queue.enqueue(f"jobs.{name}", *args, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)


def result(job: Job, timeout: int = 60) -> Any:
    """The job's return value, waiting up to ``timeout`` seconds; raise if it failed."""
    deadline = time.monotonic() + timeout
    latest = job.latest_result(timeout=WAIT_SLICE)  # blocks on the job's result stream
    while latest is None and time.monotonic() < deadline:
        latest = job.latest_result(timeout=WAIT_SLICE)
    if latest is None:
        msg = f"job {job.id} ({job.func_name}) has no result after {timeout}s: is a worker listening on {job.origin!r}?"
        raise TimeoutError(msg)
    if latest.type == Result.Type.SUCCESSFUL:
        return latest.return_value
    raise JobFailedError(job.id, latest.exc_string or f"ended as {latest.type.name}")


def call(queue: Queue, name: str, *args: object, timeout: int = 60) -> Any:
    return result(enqueue(queue, name, *args), timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Open an account and deposit into it concurrently.")
    parser.add_argument("--deposits", type=int, default=100, help="how many deposits of 1 cent (default 100)")
    parser.add_argument("--queue", default="default")
    args = parser.parse_args(argv)
    queue = job_queue(args.queue)
    account = call(queue, "open_account", "Ada Lovelace", "ada@example.com")
    print(json.dumps(account))
    # All enqueued first, so the workers run them at the same time; then collected.
    deposits = [enqueue(queue, "deposit", account["id"], 1) for _ in range(args.deposits)]
    for job in deposits:
        result(job)
    final = call(queue, "get_account", account["id"])
    print(json.dumps(final))
    expected = (args.deposits, args.deposits + 1)
    if (final["balance"], final["version"]) != expected:
        print(f"expected balance and version {expected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
