"""A recipe copied alone, with shared/, into a folder outside the repository
installs from its requirements files into a fresh venv and passes its own tests
(all but the gunicorn runs, which its tox environment has run)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RECIPES, ROOT

IGNORE = shutil.ignore_patterns("var", "__pycache__", "*.egg-info", "build", ".pytest_cache", ".cache", ".venv")


def local_packages(recipe: Path) -> set[str]:
    """The repository's folders a recipe installs by relative path (``../../shared``...)."""
    lines = "\n".join((recipe / name).read_text() for name in ("requirements.txt", "requirements-test.txt"))
    return set(re.findall(r"^(?:-e )?\.\./\.\./([\w-]+)", lines, flags=re.M))


def failures(output: str, limit: int = 40_000) -> str:
    """What a failed inner run says about its failures: each test's assertion and
    traceback, then its captured logs (the servers' too), then the summary. Its
    last lines alone are the servers' request logs, which say nothing."""
    match = re.search(r"^=+ (FAILURES|ERRORS) =+$", output, flags=re.M)
    if match is None:  # it failed before any test ran (collection, usage)
        return output[-limit:]
    report = output[match.start() :]
    if len(report) <= limit:
        return report
    summary = report[report.rfind("short test summary info") - 40 :]
    cut = "\n[...]\n"
    return report[: limit - len(summary) - len(cut)] + cut + summary


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_a_copied_recipe_stands_alone(recipe: Path, tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    packages = local_packages(recipe)
    assert "shared" in packages
    for package in packages:  # shared/, and cassandra/ for the Cassandra recipes
        shutil.copytree(ROOT / package, project / package, ignore=IGNORE)
    copy = shutil.copytree(recipe, project / "recipes" / recipe.name, ignore=IGNORE)

    assert ROOT not in copy.parents

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-r", "requirements-test.txt"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    where = subprocess.run(
        [python, "-c", "import bankaccounts; print(bankaccounts.__file__)"], capture_output=True, text=True, check=True
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), "the copy must not use the repository's shared/"

    env = {key: value for key, value in os.environ.items() if not key.startswith(("COOKBOOK_", "DATABASE_URL"))}
    # A cache, not code: the copy may reuse the Cassandra jars Maven already fetched.
    env.setdefault("CASSANDRA_CACHE_DIR", str(ROOT / "cassandra" / ".cache"))
    # The copy runs its own suite, minus the runs under gunicorn: the recipe's
    # tox environment runs those, and gunicorn.conf.py names no path that
    # copying could break, while uwsgi.ini does (the virtualenv's python).
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not gunicorn", "-rfE", "--tb=short"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, failures(output)
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), summary
    assert "skipped" not in summary, summary
    assert "failed" not in summary, summary


def test_a_failed_inner_run_reports_the_assertion_before_the_server_logs() -> None:
    server_log = "\n".join(f"[pid: 1|app: 0|req: {n}/{n}] POST /accounts/x/deposit => 200" for n in range(5000))
    output = (
        "....F...\n"
        "=================================== FAILURES ===================================\n"
        "___ TestServers.test_graceful_reload_under_load_loses_no_request[uwsgi] ___\n"
        "E   AssertionError: assert ['ConnectionResetError(104)'] == []\n"
        "------------------------ uwsgi log (last 200 lines) ------------------------\n"
        f"{server_log}\n"
        "=========================== short test summary info ============================\n"
        "FAILED tests/test_servers.py::TestServers::test_graceful_reload_under_load_loses_no_request[uwsgi]\n"
        "1 failed, 276 passed in 900.00s\n"
    )
    report = failures(output)
    assert len(report) <= 40_000
    assert "E   AssertionError: assert ['ConnectionResetError(104)'] == []" in report
    assert report.rstrip().endswith("1 failed, 276 passed in 900.00s")
    assert "short test summary info" in report
