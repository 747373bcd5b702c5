"""The fault proxy in front of any TCP server (a Cassandra node, in the recipes): here an
echo server, so that every store's run checks it. No PostgreSQL parsing happens."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from cookbook_testing.faults import FaultProxy


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    def echo(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()
    listener.close()


def ask(port: int, message: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(message)
        return connection.recv(65536)


def test_it_forwards_bytes_it_cannot_parse_and_fails_on_demand(echo_server: tuple[str, int]) -> None:
    # Not PostgreSQL's framing: a length prefix that would mean 84 MB to a PostgreSQL parser.
    message = b"\x05\x00\x00\x01\x07" + b"x" * 100
    with FaultProxy(address=echo_server) as proxy:
        assert not proxy.speaks_postgresql
        assert ask(proxy.port, message) == message

        proxy.freeze()
        with pytest.raises(TimeoutError):
            ask(proxy.port, message, timeout=0.5)
        proxy.thaw()
        assert ask(proxy.port, message) == message

        proxy.go_down()
        # Accepted, then reset at once (as a port nothing listens on answers), not closed
        # in order: a client that waits to read first hears the reset, not an end of stream.
        with pytest.raises(ConnectionResetError):  # from connect() or the first recv()
            ask(proxy.port, b"", timeout=2.0)  # sends nothing: reads first
        with pytest.raises(ConnectionError):
            ask(proxy.port, message, timeout=2.0)
        proxy.come_back()
        assert ask(proxy.port, message) == message


def test_a_proxy_has_one_upstream() -> None:
    with pytest.raises(ValueError, match="not both"):
        FaultProxy("postgresql://127.0.0.1/x", address=("127.0.0.1", 1))
    with pytest.raises(ValueError, match="not both"):
        FaultProxy()
