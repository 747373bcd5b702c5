"""Run a recipe's own command as a real process, watch it, and stop it.

``ManagedProcess`` starts a console script of the current virtualenv (the one
the tests run in, which is the one the recipe's requirements were installed
into) from the recipe folder, sends its output to a log file, waits until a
readiness check passes (polling, never a fixed sleep), and stops it with a
chosen signal. Every process started in a test session is remembered, so a
failing test can show the logs of the processes it used.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self, TypeVar

import psutil

T = TypeVar("T")

#: Every process started in this test session, so failures can show their logs.
started: list[ManagedProcess] = []

#: Where the processes' logs go: the test plugin points it at a folder of pytest's
#: own temporary tree, which pytest prunes to its last three runs. Unset, each
#: log is a new file of the system's temporary folder.
log_folder: Path | None = None

#: The longest a server or a queue worker may take to stop after SIGTERM, whenever
#: the signal comes (docs/topics/servers.rst): requests or tasks in hand finish,
#: workers still starting finish starting, and every application is closed.
STOP_BOUND_SECONDS = 15.0
#: What a log line that reports failed code contains (``errors_logged``).
ERROR_MARKS = ("Traceback (most recent call last)", "Signal handler")


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


class ManagedProcess:
    """A console script run from ``cwd``; subclasses say when it is ready."""

    def __init__(self, kind: str, program: str, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.kind = kind
        self.program = program
        self.args = args
        self.cwd = cwd
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # As if the venv were activated (uwsgi.ini takes its python from here).
            "VIRTUAL_ENV": sys.prefix,
            **env,
        }
        self.log_path = Path(tempfile.mkstemp(prefix=f"{kind}-", suffix=".log", dir=log_folder)[1])
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = float("inf")
        self.stopped_at: float | None = None

    @property
    def command(self) -> list[str]:
        # The console scripts of the running interpreter's environment (the venv).
        return [str(Path(sys.executable).parent / self.program), *self.args]

    def is_ready(self) -> bool:
        return True

    def start(self, timeout: float = 60.0, until: Callable[[], bool] | None = None) -> Self:
        """Start the process; return once ``until`` (default: ``is_ready``) holds."""
        ready = until or self.is_ready
        self.started_at = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # signals to the test runner never reach it
            )
        started.append(self)

        def ready_or_dead() -> bool:
            if self.returncode is not None:
                msg = f"{self.kind} exited with code {self.returncode} before it was ready"
                raise AssertionError(msg)
            return ready()

        try:
            wait_for(ready_or_dead, timeout, f"{self.kind} to become ready")
        except BaseException:
            self.kill()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def child_pids(self) -> set[int]:
        """Live child processes (a prefork server's workers, a pool's children)."""
        try:
            children = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return set()
        pids = set()
        for child in children:
            # A child that exits between the listing and this look is not live
            # either; it must not make the whole answer empty.
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.status() != psutil.STATUS_ZOMBIE:
                    pids.add(child.pid)
        return pids

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``signum`` and wait for the process to exit; return its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                where = self.describe()  # before the kill, for the failure report
                self.kill()
                msg = f"{self.kind} did not exit within {timeout}s of signal {signum}; its processes then:\n{where}"
                raise AssertionError(msg) from None
        self.stopped_at = time.monotonic()
        return self.process.returncode

    def describe(self) -> str:
        """One line per live process of its group: what it waits in, and its signals.

        For a process that does not stop: a signal it blocks (``SigBlk``) or has
        pending (``SigPnd``, ``ShdPnd``) and the kernel function it sleeps in
        (``wchan``) usually say why. Masks are hexadecimal, bit ``n - 1`` for
        signal ``n`` (SIGHUP 0x1, SIGINT 0x2, SIGTERM 0x4000).
        """
        lines = []
        for process in psutil.process_iter(["pid", "name", "status"]):
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(process.pid) != self.pid:
                    continue
                status = Path(f"/proc/{process.pid}/status").read_text()
                fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
                masks = " ".join(f"{key}={fields.get(key, '?').strip()}" for key in ("SigBlk", "SigPnd", "ShdPnd"))
                wchan = Path(f"/proc/{process.pid}/wchan").read_text().strip() or "-"
                parent = process.ppid()
                lines.append(
                    f"  pid {process.pid} (parent {parent}) {process.info['name']} {process.info['status']}"
                    f" wchan={wchan} {masks}"
                )
        return "\n".join(lines) or "  (none left)"

    def left_behind(self) -> bool:
        """Whether a process it started (a worker, a pool child) outlived it.

        Every process it starts is in its session's process group, so after it
        exits, a live member of the group is one it left behind.
        """
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait_until_gone(self, timeout: float, what: str = "every process of its group") -> None:
        """Wait for ``what`` to exit (after the process itself): fail with what is still running."""
        try:
            wait_for(lambda: not self.left_behind(), timeout, f"{what} of {self.kind} to exit")
        except AssertionError as error:
            raise AssertionError(f"{error}; still running:\n{self.describe()}") from None

    def kill(self) -> None:
        """Last resort: kill the whole process group, so no child outlives a test."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def errors_logged(self) -> list[str]:
        """Lines of its log that say code failed: a traceback's first line, or a signal
        handler that raised (Celery logs that and goes on, so nothing else fails)."""
        return [line for line in self.log().splitlines() if any(mark in line for mark in ERROR_MARKS)]

    def constructed(self) -> list[tuple[int, str]]:
        """(pid, application id) of every application constructed, from ``bankaccounts.lifecycle``'s log."""
        return _applications("constructed", self.log())

    def closed(self) -> list[tuple[int, str]]:
        """(pid, application id) of every application closed."""
        return _applications("closed", self.log())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(AssertionError):
                self.stop()
        self.kill()

    def close(self) -> None:
        """Stop (gracefully, bounded), make sure, and delete the log: for long runs
        that start many processes and keep no log of those that went well (the
        benchmarks). A graceful stop that fails raises, after the kill: a process
        that ignores its stop costs the whole bound each time (the rq baseline's
        pools did, unnoticed: 90 of a quick run's 430 s)."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.stop()
        finally:
            self.kill()
            self.log_path.unlink(missing_ok=True)


def _applications(verb: str, log: str) -> list[tuple[int, str]]:
    pattern = rf"{verb} application (\w+) in process (\d+)"
    return [(int(pid), application_id) for application_id, pid in re.findall(pattern, log)]
