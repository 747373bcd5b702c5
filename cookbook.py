#!/usr/bin/env python3
"""Set up and run the cookbook with nothing but Python 3.11+ and pip (no root).

    python3 cookbook.py serve [RECIPE]     # install a recipe in a venv and serve it
    python3 cookbook.py test [TOX ARGS]    # install tox and run the whole test matrix
    python3 cookbook.py copy RECIPE DEST   # a recipe as a project of its own, in DEST
    python3 cookbook.py list               # the recipes

Virtual environments go under ``.venvs/`` (``COOKBOOK_VENVS`` moves them).
Standard library only: this script runs before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
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
#: What a run leaves in a folder (databases, caches, builds, virtualenvs): never copied.
NOT_COPIED = shutil.ignore_patterns(
    "var", "__pycache__", "*.egg-info", "build", ".pytest_cache", ".cache", ".venv", ".venvs", ".tox"
)


def fail(message: str) -> None:
    print(f"cookbook: {message}", file=sys.stderr)
    raise SystemExit(2)


def recipe_names() -> list[str]:
    return sorted(p.name for p in RECIPES.iterdir() if (p / "requirements.txt").is_file())


def web_recipe_names() -> list[str]:
    """Recipes with a WSGI entry point, which ``serve`` can run."""
    return [name for name in recipe_names() if (RECIPES / name / "wsgi.py").is_file()]


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


def prepare_django(recipe_dir: Path, python: Path, env: dict[str, str]) -> None:
    """A Django recipe needs its tables migrated, and a secret key, before it serves."""
    if not env.get("DJANGO_SECRET_KEY"):
        # A throw-away key for this run only; production sets its own.
        env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
        print("cookbook: DJANGO_SECRET_KEY is not set; using a random key for this run", flush=True)
    # serve speaks plain HTTP on loopback, with no TLS proxy in front.
    env.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
    subprocess.run([str(python), "manage.py", "migrate", "--no-input"], cwd=recipe_dir, env=env, check=True)


def serve(recipe: str, server_name: str, port: int) -> int:
    recipe_dir = RECIPES / recipe
    if recipe not in web_recipe_names():
        fail(f"no web recipe {recipe!r}; choose one of: {', '.join(web_recipe_names())}")
    environment = venv(recipe)
    python = environment / "bin" / "python"
    print(f"cookbook: installing {recipe_dir.relative_to(ROOT)}/requirements.txt", flush=True)
    run_pip(python, "install", "--quiet", "-r", "requirements.txt", cwd=recipe_dir)
    program, *args = SERVERS[server_name]
    env = {**os.environ, "PORT": str(port), "VIRTUAL_ENV": str(environment)}
    env["PATH"] = f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if (recipe_dir / "manage.py").is_file():
        prepare_django(recipe_dir, python, env)
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


def test(tox_args: list[str]) -> int:
    environment = venv("tox")
    run_pip(environment / "bin" / "python", "install", "--quiet", *TOX_REQUIREMENTS)
    env = dict(os.environ)
    if versions := pyenv_versions():
        # pyenv's shim for python3 has already set PYENV_VERSION to one version
        # (the one running this script); add the others, keeping it first.
        listed = [*env.get("PYENV_VERSION", "").split(":"), *versions.split(":")]
        env["PYENV_VERSION"] = ":".join(dict.fromkeys(v for v in listed if v))

    command = [str(environment / "bin" / "tox"), "run-parallel", "--parallel", "auto", "--parallel-no-spinner"]
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        # In CI an environment whose Python is missing is a failure, not a skip.
        command += ["--skip-missing-interpreters", "false"]
    return subprocess.run([*command, *tox_args], cwd=ROOT, env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cookbook.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve a web recipe (default: flask-sqlalchemy)")
    serve_parser.add_argument("recipe", nargs="?", default="flask-sqlalchemy")
    serve_parser.add_argument("--server", choices=sorted(SERVERS), default="uwsgi")
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    commands.add_parser("test", help="run the whole test matrix with tox (other arguments go to tox)")
    copy_parser = commands.add_parser("copy", help="copy a recipe, and what it installs from here, into DEST")
    copy_parser.add_argument("recipe")
    copy_parser.add_argument("destination", type=Path)
    commands.add_parser("list", help="list the recipes")
    args, tox_args = parser.parse_known_args(argv)
    if args.command == "test":
        return test(tox_args)
    if tox_args:
        parser.error(f"unrecognized arguments: {' '.join(tox_args)}")
    if args.command == "serve":
        return serve(args.recipe, args.server, args.port)
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
