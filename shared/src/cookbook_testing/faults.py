"""A TCP proxy between an application and its database that misbehaves on demand.

Real faults, not mocks: the application talks to a real PostgreSQL server (or
any server over TCP: a Cassandra node) through this proxy, which forwards
every byte until a test asks it to

- ``lose_next_commit_reply()`` (PostgreSQL): forward the next ``COMMIT`` to
  the server, let the server commit, then cut the connection before the client
  hears the answer (a lost acknowledgement: the client cannot know whether it
  committed);
- ``freeze()`` / ``thaw()``: stop forwarding in both directions, as a server
  that hangs (connections stay open, nothing comes back);
- ``go_down()`` / ``come_back()``: cut every connection and refuse new ones,
  as a server that stopped, until it is back.

The proxy reads the client's side of the PostgreSQL protocol only to find
``COMMIT`` (in a simple query, or parsed for the extended protocol, as psycopg
does in a pipeline); it never changes a byte.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: The codes of the untyped requests a client may send before its startup message.
_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102


class _ClientMessages:
    """Splits the client's byte stream into PostgreSQL messages, to spot ``COMMIT``."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False  # after the startup message, every message has a type byte

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield (type, body) for each complete message; type is b"" before startup."""
        self._buffer += data
        while True:
            if not self._started:
                if len(self._buffer) < 8:
                    return
                (length,) = struct.unpack("!i", self._buffer[:4])
                if len(self._buffer) < length:
                    return
                message, self._buffer = self._buffer[:length], self._buffer[length:]
                (code,) = struct.unpack("!i", message[4:8])
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST):
                    self._started = True
                yield b"", message
            else:
                if len(self._buffer) < 5:
                    return
                (length,) = struct.unpack("!i", self._buffer[1:5])
                if len(self._buffer) < 1 + length:
                    return
                message, self._buffer = self._buffer[: 1 + length], self._buffer[1 + length :]
                yield message[:1], message[5:]


def _is_commit(kind: bytes, body: bytes) -> bool:
    """A simple query (``Q``) or a parse (``P``, extended protocol: pipelines) of ``COMMIT``."""
    if kind == b"Q":
        query = body
    elif kind == b"P":  # statement name, then the query, each ended by NUL
        query = body.split(b"\0", 2)[1] if body.count(b"\0") >= 2 else b""
    else:
        return False
    return query.rstrip(b"\0").strip().rstrip(b";").upper() in (b"COMMIT", b"END")


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.messages = _ClientMessages()
        self.swallow_reply = False  # set once this link has sent a COMMIT whose answer must be lost
        self.closed = threading.Event()

    def run(self) -> None:
        try:
            self._pump()
        except OSError:
            pass
        finally:
            self.close()

    def _pump(self) -> None:
        sockets = [self.client, self.server]
        while not self.closed.is_set():
            self.proxy._running.wait()  # frozen: forward nothing, answer nothing
            if self.closed.is_set():
                return
            readable, _, _ = select.select(sockets, [], [], 0.05)
            if not self.proxy._running.is_set():
                continue  # frozen while waiting: leave the bytes unread
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                if source is self.client:
                    if self.proxy.speaks_postgresql:
                        for kind, body in self.messages.feed(data):
                            if _is_commit(kind, body) and self.proxy._take_commit_fault():
                                self.swallow_reply = True
                    self.server.sendall(data)
                elif self.swallow_reply:
                    # The server has answered the COMMIT (it committed): the client never hears it.
                    self.proxy.commits_lost += 1
                    return
                else:
                    self.client.sendall(data)

    def close(self) -> None:
        self.closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    """Listens on a loopback port (``port``) and forwards to the PostgreSQL server
    ``database_url`` names, or to the TCP server at ``address``.

    ``url`` is the same database reached through the proxy. The PostgreSQL
    server may listen on TCP or on a Unix socket (``?host=/path/to/socket/dir``).
    """

    def __init__(self, database_url: str = "", *, address: tuple[str, int] | None = None) -> None:
        if bool(database_url) == (address is not None):
            msg = "give the PostgreSQL database_url or the address of another server, not both"
            raise ValueError(msg)
        self.upstream_url = database_url
        self.upstream = address or _address(database_url)
        #: Whether the proxy reads the client's messages (to find COMMIT).
        self.speaks_postgresql = bool(database_url)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._running = threading.Event()
        self._running.set()
        self._down = False
        self._commit_faults = 0
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        #: How many COMMIT answers the proxy has kept from their clients.
        self.commits_lost = 0
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        """The database, reached through the proxy."""
        assert self.speaks_postgresql, "a proxy to an address has no database URL"
        parts = urlsplit(self.upstream_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        query = urlencode([(key, value) for key, value in parse_qsl(parts.query) if key not in ("host", "port")])
        return urlunsplit(parts._replace(netloc=netloc, query=query))

    # --- faults ------------------------------------------------------------------

    def lose_next_commit_reply(self, count: int = 1) -> None:
        assert self.speaks_postgresql, "only a PostgreSQL proxy knows a COMMIT"
        with self._lock:
            self._commit_faults += count

    def freeze(self) -> None:
        self._running.clear()

    def thaw(self) -> None:
        self._running.set()

    def go_down(self) -> None:
        """Cut every connection and refuse new ones (each is reset as soon as accepted)."""
        self._down = True
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def come_back(self) -> None:
        self._down = False

    # --- plumbing ----------------------------------------------------------------

    def _take_commit_fault(self) -> bool:
        with self._lock:
            if self._commit_faults:
                self._commit_faults -= 1
                return True
            return False

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down:
                _refuse(client)
                continue
            try:
                server = _connect(self.upstream)
            except OSError:
                client.close()
                continue
            link = _Link(self, client, server)
            with self._lock:
                self._links = [existing for existing in self._links if not existing.closed.is_set()]
                self._links.append(link)
            threading.Thread(target=link.run, name="fault-proxy-link", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._running.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.go_down()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class StoreBehindAProxy:
    """A store that the servers a test starts reach only through ``proxy``.

    ``store_env`` is what points a server at it: the proxy's ``DATABASE_URL``
    for PostgreSQL; ``CASSANDRA_HOSTS`` (the proxy) and a keyspace for Cassandra.
    """

    proxy: FaultProxy
    store_env: dict[str, str] = field(default_factory=dict)

    def start(self, start_server: Callable[..., Any], **more: Any) -> Any:
        """The test kit's ``start_server`` on this store (``more``: its other arguments)."""
        return start_server(store=self.store_env, **more)


def _address(database_url: str) -> tuple[str, int] | str:
    """Where the server listens: (host, port), or the path of its Unix socket."""
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "/var/run/postgresql"
    port = int(query.get("port") or parts.port or 5432)
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return (host, port)


def _refuse(client: socket.socket) -> None:
    """Reset a connection just accepted, as a host answers a port nothing listens on.

    A connection closed in order instead (a FIN) is not what a stopped server
    sends: Cassandra's driver, which writes its first request and then waits
    for the answer, waited out its whole connect timeout on one.
    The port stays the proxy's: were it let go, another socket could take it.
    """
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def _connect(address: tuple[str, int] | str) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(address)
    else:
        sock = socket.create_connection(address, timeout=10)
    sock.settimeout(None)
    return sock
