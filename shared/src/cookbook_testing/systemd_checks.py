"""What a recipe's server tells systemd, checked against the real server.

``shared/deploy/systemd``'s web units are ``Type=notify``: systemd counts the
service as started when its main process sends ``READY=1`` to the socket named
by ``NOTIFY_SOCKET``, and starts what comes after it (nginx, say) only then.
uWSGI and gunicorn both send it from their master. Here the test is systemd:
it listens on such a socket (in the abstract namespace, as systemd may name
one: ``@...``), starts the server with its name, and once ``READY=1`` comes,
the server must answer.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable

import pytest

from cookbook_testing.servers import ServerProcess

__all__ = ["ReadyForSystemdChecks"]

#: How long a server may take to say it is ready.
READY_TIMEOUT = 60.0


@pytest.mark.topology
class ReadyForSystemdChecks:
    """Include in a web recipe's ``test_servers.py``, for servers that notify (uWSGI, gunicorn)."""

    def test_it_tells_systemd_it_is_ready_and_then_serves(self, start_server: Callable[..., ServerProcess]) -> None:
        name = f"cookbook-notify-{uuid.uuid4().hex}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(f"\0{name}")
            started = time.monotonic()
            # Returns as soon as the process runs: readiness is what this test waits for.
            server = start_server(until=lambda _: True, env={"NOTIFY_SOCKET": f"@{name}"})
            messages: list[str] = []
            while not any("READY=1" in message.splitlines() for message in messages):
                notify.settimeout(max(0.1, READY_TIMEOUT - (time.monotonic() - started)))
                messages.append(notify.recv(4096).decode())  # socket.timeout past READY_TIMEOUT fails the test
            ready = time.monotonic() - started
        response = server.client.get("/health")
        assert response.status == 200, response
        print(f"{server.kind}: READY=1 after {ready:.2f} s; then /health answered {response.status}: {messages}")
