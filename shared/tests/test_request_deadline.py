"""RequestDeadline ends the waits of a request that runs too long, and only of such a request.

A connected socket pair stands in for a database connection: the request waits
on its end for an answer that the other end never sends (a database that hangs).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from bankaccounts.request_deadline import RequestDeadline
from bankaccounts.timeouts import RequestTimeoutError
from bankaccounts.web import store_unavailable

SECONDS = 0.5
#: Longer than the deadline: a wait that the deadline did not end fails the test, not hangs it.
SOCKET_TIMEOUT = 10.0


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, database = socket.socketpair()
    ours.settimeout(SOCKET_TIMEOUT)
    with ours, database:
        yield ours, database


def call(application: Callable[..., Iterable[bytes]]) -> list[bytes]:
    return list(application({}, lambda status, headers: None))


def test_a_request_past_its_deadline_has_its_wait_ended_and_opens_no_connection(
    connection: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = connection
    deadline = RequestDeadline(SECONDS)
    deadline.start()
    deadline.track(ours)
    seen: dict[str, Any] = {}

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen["answer"] = ours.recv(1)  # no answer comes: only the deadline ends this wait
        seen["seconds"] = time.monotonic() - called
        with pytest.raises(RequestTimeoutError) as refused:
            deadline.check()  # as a new connection would, in the same request
        seen["refused"] = refused.value
        return [b"503"]

    # Timed from before the call: the deadline's clock starts inside it, a little later.
    called = time.monotonic()
    assert call(deadline.wsgi(application)) == [b"503"]
    assert seen["answer"] == b"", "the connection was not cut"
    assert SECONDS <= seen["seconds"] < SECONDS + 2.0
    assert store_unavailable(seen["refused"])  # answered 503, as a store that is unavailable
    deadline.check()  # the next request starts with time of its own


def test_a_request_within_its_deadline_and_idle_connections_are_left_alone(
    connection: tuple[socket.socket, socket.socket],
) -> None:
    ours, database = connection
    deadline = RequestDeadline(SECONDS)
    deadline.start()
    deadline.track(ours)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        database.sendall(b"!")
        return [ours.recv(1)]

    assert call(deadline.wsgi(application)) == [b"!"]
    time.sleep(SECONDS * 2)  # a length of time: past the deadline, with no request running
    assert call(deadline.wsgi(application)) == [b"!"], "an idle connection was cut"
