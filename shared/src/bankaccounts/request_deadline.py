"""A time limit for requests, kept by the worker itself, for a server that keeps none (Granian).

uWSGI and gunicorn end a request that has run ``REQUEST_TIMEOUT`` + 5 s
(``bankaccounts.timeouts``): the last resort for a database that hangs, since
a client library waits for ever for the answer to a query the database has
accepted. Granian has no such limit. Under it, a request on a hung database
waits as long as the database does, and its worker, serving one request at a
time, serves nothing else meanwhile.

``RequestDeadline`` is that limit, inside the worker. A watchdog thread notes
when each request began; when one has run ``seconds``, it shuts down the
sockets of the worker's database connections. The wait in the database
client ends at once with an error ("server closed the connection
unexpectedly"), the request answers 503 as for any unavailable store, and the
worker serves on: unlike a server's limit, it costs no worker. A connection
the request opens after that is refused at once (``check``) rather than
waited for. The database rolls back what the cut connections had not
committed; a write sent again with its key is applied once.

It cuts *every* connection the worker has: with one request at a time in a
worker (the recipes' Granian configuration), those are that request's, and
idle ones, which the pool's pre-ping replaces. A connection is anything with
``fileno()``, a socket: psycopg's. SQLite has none, and a file does not hang.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from bankaccounts.timeouts import RequestTimeoutError

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestDeadline:
    """Ends the database waits of any request that runs ``seconds`` (see the module)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._changed = threading.Condition()
        #: Each thread serving a request, with when (``time.monotonic()``) it began.
        self._started: dict[int, float] = {}
        #: The threads whose request has run out of time.
        self._out_of_time: set[int] = set()
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        """Start the watchdog, in the process that serves (a thread does not survive a fork)."""
        self._watchdog = threading.Thread(target=self._watch, name="request-deadline", daemon=True)
        self._watchdog.start()

    def wsgi(self, application: WSGIApp) -> WSGIApp:
        """``application``, each call of which is watched."""

        def watched_application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            thread = threading.get_ident()
            with self._changed:
                self._started[thread] = time.monotonic()
                self._changed.notify()
            try:
                return application(environ, start_response)
            finally:
                with self._changed:
                    self._started.pop(thread, None)
                    self._out_of_time.discard(thread)

        return watched_application

    def track(self, connection: Any) -> None:
        """A database connection this worker opened: cut when a request runs out of time."""
        if hasattr(connection, "fileno"):
            self._connections.add(connection)

    def check(self) -> None:
        """Raise ``RequestTimeoutError`` if this thread's request has run out of time:
        call it before opening a connection, which would otherwise wait its own timeout."""
        if threading.get_ident() in self._out_of_time:
            msg = f"the request ran out of time: its limit is {self.seconds} s"
            raise RequestTimeoutError(msg)

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                late = {thread for thread, began in self._started.items() if now - began >= self.seconds}
                if late - self._out_of_time:
                    self._out_of_time |= late
                    connections = list(self._connections)
                    for connection in connections:
                        _cut(connection)
                    logger.warning(
                        "a request ran for %s s: %d database connections of process %d cut",
                        self.seconds,
                        len(connections),
                        os.getpid(),
                    )
                waits = [began + self.seconds - now for thread, began in self._started.items() if thread not in late]
                self._changed.wait(min(waits) if waits else None)


def _cut(connection: Any) -> None:
    """Shut the connection's socket down, under the client library, which still owns it."""
    try:
        fd = connection.fileno()
    except Exception:  # closed already
        return
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)  # the socket itself, not only this descriptor of it
