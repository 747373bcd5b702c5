#!/usr/bin/env python3
"""Set up and run the cookbook with nothing but Python 3.11+ and pip (no root).

    python3 cookbook.py serve [RECIPE]   # install a recipe in a venv and serve it
    python3 cookbook.py test [TOX ARGS]  # install tox and run the whole test matrix
    python3 cookbook.py list             # the recipes you can serve

Virtual environments go under ``.venvs/`` (``COOKBOOK_VENVS`` moves them).
Standard library only: this script runs before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RECIPES = ROOT / "recipes"
SERVERS = {
    "uwsgi": ["uwsgi", "--ini", "uwsgi.ini"],
    "gunicorn": ["gunicorn", "-c", "gunicorn.conf.py"],
}
TOX_REQUIREMENTS = ["tox>=4.20", "tox-uv>=1.11"]


def fail(message: str) -> None:
    print(f"cookbook: {message}", file=sys.stderr)
    raise SystemExit(2)


def recipe_names() -> list[str]:
    return sorted(p.name for p in RECIPES.iterdir() if (p / "requirements.txt").is_file())


def venv(name: str) -> Path:
    """Create (once) and return a virtual environment for ``name``."""
    path = Path(os.environ.get("COOKBOOK_VENVS") or ROOT / ".venvs") / name
    python = path / "bin" / "python"
    if not python.exists():
        print(f"cookbook: creating a virtual environment in {path}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        run_pip(python, "install", "--quiet", "--upgrade", "pip")
    return path


def run_pip(python: Path, *args: str, cwd: Path | None = None) -> None:
    subprocess.run([str(python), "-m", "pip", *args], check=True, cwd=cwd)


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


def serve(recipe: str, server_name: str, port: int) -> int:
    recipe_dir = RECIPES / recipe
    if recipe not in recipe_names():
        fail(f"no recipe {recipe!r}; choose one of: {', '.join(recipe_names())}")
    environment = venv(recipe)
    print(f"cookbook: installing {recipe_dir.relative_to(ROOT)}/requirements.txt", flush=True)
    run_pip(environment / "bin" / "python", "install", "--quiet", "-r", "requirements.txt", cwd=recipe_dir)
    program, *args = SERVERS[server_name]
    env = {**os.environ, "PORT": str(port), "VIRTUAL_ENV": str(environment)}
    env["PATH"] = f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # A session of its own, so Ctrl+C reaches only this script, which then asks
    # the server for a graceful stop (SIGTERM) rather than an abrupt one.
    server = subprocess.Popen(
        [str(environment / "bin" / program), *args], cwd=recipe_dir, env=env, start_new_session=True
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.send_signal(signal.SIGTERM))
    url = f"http://{env.get('HOST') or '127.0.0.1'}:{port}"
    if wait_until_healthy(url, server):
        store = os.environ.get("DATABASE_URL") or f"SQLite file {recipe_dir.relative_to(ROOT)}/var/bankaccounts.sqlite3"
        print(f"\ncookbook: serving {recipe} with {server_name} at {url}  (events in: {store})", flush=True)
        print(f"cookbook: try  curl {url}/health   and stop with Ctrl+C\n", flush=True)
    return server.wait()


def test(tox_args: list[str]) -> int:
    environment = venv("tox")
    run_pip(environment / "bin" / "python", "install", "--quiet", *TOX_REQUIREMENTS)
    command = [str(environment / "bin" / "tox"), "run-parallel", "--parallel", "auto", "--parallel-no-spinner"]
    return subprocess.run([*command, *tox_args], cwd=ROOT, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cookbook.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve a recipe (default: flask-sqlalchemy)")
    serve_parser.add_argument("recipe", nargs="?", default="flask-sqlalchemy")
    serve_parser.add_argument("--server", choices=sorted(SERVERS), default="uwsgi")
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    commands.add_parser("test", help="run the whole test matrix with tox (other arguments go to tox)")
    commands.add_parser("list", help="list the recipes")
    args, tox_args = parser.parse_known_args(argv)
    if args.command == "test":
        return test(tox_args)
    if tox_args:
        parser.error(f"unrecognized arguments: {' '.join(tox_args)}")
    if args.command == "serve":
        return serve(args.recipe, args.server, args.port)
    print("\n".join(recipe_names()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
