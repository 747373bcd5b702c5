"""Start a recipe's own server configuration as a real process, and watch it.

``ServerProcess`` runs ``uwsgi --ini uwsgi.ini``, ``gunicorn -c
gunicorn.conf.py``, ``python serve_uvicorn.py`` or ``python serve_granian.py``
from the recipe folder, exactly as the recipe's README
tells users to, with ``PORT``, ``WEB_CONCURRENCY`` and the store's settings
(``DATABASE_URL``, or ``CASSANDRA_HOSTS`` and ``CASSANDRA_KEYSPACE``...) in the
environment. It is ready when every worker has answered ``/health``; it
knows the worker pids and can reload, and it keeps the server's log so that a
failing test can show it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import psutil

from cookbook_testing.http import HTTPClient
from cookbook_testing.processes import ManagedProcess, started, wait_for

__all__ = [
    "COMMANDS",
    "KILLED_FOR_NOT_STOPPING",
    "RECIPE_WORKERS",
    "RELOAD_ABANDONED",
    "REPLACEMENT_BOUND_SECONDS",
    "TEST_WORKERS",
    "WSGI_SERVERS",
    "ServerProcess",
    "free_port",
    "started",
    "wait_for",
]

COMMANDS = {
    "uwsgi": ["uwsgi", "--ini", "uwsgi.ini"],
    "gunicorn": ["gunicorn", "-c", "gunicorn.conf.py"],
    # uvicorn and Granian read no config file: the recipe's is a script that starts them.
    "uvicorn": ["python", "serve_uvicorn.py"],
    "granian": ["python", "serve_granian.py"],
}
#: What a server logs when it kills a worker that did not stop in its time. Granian's
#: (``workers_kill_timeout``, 10 s in the recipes) ends within ``STOP_BOUND_SECONDS``, so
#: a stop lost by a worker that held no application yet would pass unseen without it;
#: uWSGI's and gunicorn's limits lie beyond the bound.
KILLED_FOR_NOT_STOPPING = {"granian": "after it refused to gracefully stop"}
#: The recipes' default WEB_CONCURRENCY: what a server runs unless told otherwise.
RECIPE_WORKERS = 4
#: Workers per server started for one test (``start_server``): two are as many
#: as most of those tests need (workers that share nothing, a reload that
#: replaces them one by one, a stop at any moment), and each worker costs a
#: start: uvicorn's four spawned workers took 4.9 s of CPU to serve, two 2.1 s,
#: on a matrix that keeps both cores busy. The servers a test class shares, the
#: contention check, workers killed under load, the fork proofs and the
#: benchmarks run the recipes' default.
TEST_WORKERS = 2
#: What a server logs when it gives a reload up and keeps its old workers
#: (uvicorn 0.51+, when a new worker is not serving within its
#: timeout_worker_healthcheck): a reload that will never complete.
RELOAD_ABANDONED = {"uvicorn": "aborting the restart"}
#: How long a server may take to replace a worker that died: its master notices at its
#: next look and starts another (seconds), but uvicorn's supervisor, when the worker
#: died while a liveness ping to it was waiting for its answer, notices only when the
#: ping times out (``timeout_worker_healthcheck``, 30 s in the recipe: the supervisor
#: keeps the worker's end of their pipe open, so the death does not end the wait), and
#: then the new worker starts. Seen in a CI run: a replacement 30 s after the kill.
REPLACEMENT_BOUND_SECONDS = {"uvicorn": 60.0}
DEFAULT_REPLACEMENT_BOUND_SECONDS = 30.0
#: The servers a WSGI recipe's tests run under (the ``server_kind`` fixture's);
#: a recipe for other servers overrides that fixture with its own list.
WSGI_SERVERS = ["gunicorn", "uwsgi"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerProcess(ManagedProcess):
    def __init__(
        self,
        kind: str,
        recipe_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        workers: int = RECIPE_WORKERS,
        args: list[str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """``env``: laid over this process's environment (the store's settings and the
        recipe's); ``PORT`` and ``WEB_CONCURRENCY`` are set here, and ``HOST``: the
        loopback address it binds (``127.0.0.2`` and on: a host of its own)."""
        if kind not in COMMANDS:
            msg = f"unknown server {kind!r}; expected one of {sorted(COMMANDS)}"
            raise ValueError(msg)
        self.host = host
        self.port = free_port(host)
        self.workers = workers
        self.recipe_dir = recipe_dir
        self.client = HTTPClient(host, self.port)
        self._answered: set[int] = set()  # worker pids that have answered /health
        program, *default_args = COMMANDS[kind]
        server_env = {**(env or {}), "HOST": host, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}
        # args: after the program name; default: the recipe's own config file.
        super().__init__(kind, program, default_args if args is None else args, recipe_dir, server_env)

    @property
    def replacement_bound(self) -> float:
        """Seconds this server may take to replace a worker that died (``REPLACEMENT_BOUND_SECONDS``)."""
        return REPLACEMENT_BOUND_SECONDS.get(self.kind, DEFAULT_REPLACEMENT_BOUND_SECONDS)

    def start(self, timeout: float = 60.0, until: Callable[[], bool] | None = None) -> Self:
        super().start(timeout, until)
        return self

    def __enter__(self) -> Self:
        return self.start()

    def is_ready(self) -> bool:
        """Every worker has answered ``/health``: each one has finished starting.

        A worker process exists before its post-fork hook has constructed its
        application; counting processes alone let a test begin (and take the
        database away) while some workers were still starting.
        """
        workers = self.worker_pids()
        if len(workers) != self.workers:
            return False
        # From several threads at once: one idle worker would take sequential requests.
        with ThreadPoolExecutor(max_workers=self.workers * 2) as pool:
            answers = list(pool.map(lambda _: self._health_pid(), range(self.workers * 4)))
        self._answered.update(pid for pid in answers if pid is not None)
        return workers <= self._answered

    def _health_pid(self) -> int | None:
        try:
            response = self.client.get("/health")
        except OSError:
            return None
        return int(response.json["pid"]) if response.status == 200 else None

    def is_listening(self) -> bool:
        """The server has bound its port (it may still be loading the app or forking): in
        the master, or in the workers only (Granian's master hands its socket over to them)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for pid in (self.pid, *self.worker_pids()):
                for connection in psutil.Process(pid).net_connections("tcp"):
                    if connection.status == psutil.CONN_LISTEN and connection.laddr.port == self.port:
                        return True
        return False

    def answers_health(self) -> bool:
        """Some worker answers ``/health`` (others may still be starting)."""
        try:
            return self.client.get("/health").status == 200
        except OSError:
            return False

    def worker_pids(self) -> set[int]:
        """The master's children, less multiprocessing's resource tracker (uvicorn's
        supervisor starts one beside the workers it spawns)."""
        workers = set()
        for pid in self.child_pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                if "multiprocessing.resource_tracker" not in " ".join(psutil.Process(pid).cmdline()):
                    workers.add(pid)
        return workers

    def reload(self, timeout: float = 60.0) -> set[int]:
        """Ask for a graceful reload (SIGHUP); wait for a complete set of new workers."""
        old = self.worker_pids()
        os.kill(self.pid, signal.SIGHUP)

        def replaced() -> set[int]:
            abandoned = self.lines_marked(RELOAD_ABANDONED)
            if abandoned:
                raise AssertionError(f"{self.kind} gave the reload up: {abandoned[-1]}")
            new = self.worker_pids()
            return new if len(new) == self.workers and not new & old else set()

        return wait_for(replaced, timeout, f"{self.kind} to replace workers {sorted(old)} after SIGHUP")

    def lines_marked(self, marks: Mapping[str, str]) -> list[str]:
        """The lines of its log holding this kind of server's mark in ``marks`` (none: no line)."""
        mark = marks.get(self.kind)
        return [line for line in self.log().splitlines() if mark in line] if mark else []

    def killed_for_not_stopping(self) -> list[str]:
        """The lines of its log that say it killed a worker that did not stop in its time."""
        return self.lines_marked(KILLED_FOR_NOT_STOPPING)

    def signal_worker(self, pid: int, signum: int) -> None:
        if pid not in self.worker_pids():
            msg = f"{pid} is not a worker of {self.kind} (master {self.pid})"
            raise ValueError(msg)
        os.kill(pid, signum)
