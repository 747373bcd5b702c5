"""Start a recipe's own server configuration as a real process, and watch it.

``ServerProcess`` runs ``uwsgi --ini uwsgi.ini`` or ``gunicorn -c
gunicorn.conf.py`` from the recipe folder, exactly as the recipe's README
tells users to, with ``PORT``, ``WEB_CONCURRENCY`` and ``DATABASE_URL`` in the
environment. It waits for readiness by polling ``/health`` (never a fixed
sleep), knows the worker pids, stops the server with a chosen signal, and
keeps the server's log so that a failing test can show it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from cookbook_testing.http import HTTPClient

T = TypeVar("T")

COMMANDS = {
    "uwsgi": ["uwsgi", "--ini", "uwsgi.ini"],
    "gunicorn": ["gunicorn", "-c", "gunicorn.conf.py"],
}

#: Every server started in this test session, so failures can show their logs.
started: list[ServerProcess] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T], timeout: float, message: str, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        time.sleep(interval)


class ServerProcess:
    def __init__(
        self,
        kind: str,
        recipe_dir: Path,
        *,
        database_url: str,
        workers: int = 4,
        extra_env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        if kind not in COMMANDS:
            msg = f"unknown server {kind!r}; expected one of {sorted(COMMANDS)}"
            raise ValueError(msg)
        self.kind = kind
        #: Arguments after the program name; default: the recipe's own config file.
        self.args = COMMANDS[kind][1:] if args is None else args
        self.recipe_dir = recipe_dir
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.client = HTTPClient("127.0.0.1", self.port)
        self.log_path = Path(tempfile.mkstemp(prefix=f"{kind}-", suffix=".log")[1])
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "DATABASE_URL": database_url,
            "PYTHONUNBUFFERED": "1",
            # As if the venv were activated: uwsgi.ini takes its python from here.
            "VIRTUAL_ENV": sys.prefix,
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = float("inf")
        self.stopped_at: float | None = None

    @property
    def command(self) -> list[str]:
        # The console scripts of the running interpreter's environment (the venv).
        return [str(Path(sys.executable).parent / COMMANDS[self.kind][0]), *self.args]

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.started_at = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.recipe_dir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # signals to the test runner never reach it
            )
        started.append(self)
        try:
            wait_for(self._is_ready, timeout, f"{self.kind} did not answer /health on port {self.port}")
            wait_for(lambda: len(self.worker_pids()) == self.workers, timeout, f"{self.workers} workers")
        except BaseException:
            self.kill()
            raise
        return self

    def _is_ready(self) -> bool:
        if self.returncode is not None:
            msg = f"{self.kind} exited with code {self.returncode} before it was ready"
            raise AssertionError(msg)
        try:
            return self.client.get("/health").status == 200
        except OSError:
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def worker_pids(self) -> set[int]:
        try:
            return {child.pid for child in psutil.Process(self.pid).children() if child.status() != "zombie"}
        except psutil.NoSuchProcess:
            return set()

    def reload(self, timeout: float = 60.0) -> set[int]:
        """Ask for a graceful reload (SIGHUP); wait for a complete set of new workers."""
        old = self.worker_pids()
        os.kill(self.pid, signal.SIGHUP)

        def replaced() -> set[int]:
            new = self.worker_pids()
            return new if len(new) == self.workers and not new & old else set()

        return wait_for(replaced, timeout, f"{self.kind} to replace workers {sorted(old)} after SIGHUP")

    def signal_worker(self, pid: int, signum: int) -> None:

        if pid not in self.worker_pids():
            msg = f"{pid} is not a worker of {self.kind} (master {self.pid})"
            raise ValueError(msg)
        os.kill(pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``signum`` to the master and wait for it to exit; return its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.kind} did not exit within {timeout}s of signal {signum}") from None
        self.stopped_at = time.monotonic()
        return self.process.returncode

    def kill(self) -> None:
        """Last resort: kill the whole process group, so no worker outlives a test."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(AssertionError):
                self.stop()
        self.kill()
