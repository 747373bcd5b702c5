"""The shared application's own tests under eventsourcing's latest 10.x pre-release.

The recipes run on eventsourcing 9.5 (``shared/pyproject.toml`` pins it). This runs
``shared/tests`` in a virtual environment of its own with the pre-release forced in
(uv's ``--override``), and asserts how far they get: the day a pre-release gets
further, or fails another way, this test fails and says so. What changes, and what
does not, is on docs/topics/eventsourcing-10.rst.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: The latest 10.x pre-release on PyPI when this was last checked against it.
PRE_RELEASE = "10.0.0a7"
#: Where the shared tests stop: loading their conftest, at the first name 10.0 renamed.
FIRST_FAILURE = "ImportError: cannot import name 'Application' from 'eventsourcing.application'"
#: The two renames, made in the installed copy, as a port would make them ...
RENAMES = {
    "application.py": [
        (
            "from eventsourcing.application import AggregateNotFoundError, Application\n",
            "from eventsourcing.application import AggregateNotFoundError\n"
            "from eventsourcing.application import AggregatesApplication as Application\n",
        ),
        (
            "from eventsourcing.persistence import PersistenceError\n",
            "from eventsourcing.errors import PersistenceError\n",
        ),
    ],
    "slot.py": [
        (
            "from eventsourcing.application import Application\n",
            "from eventsourcing.application import AggregatesApplication as Application\n",
        )
    ],
}
#: ... and where the tests stop next: defining the domain's first aggregate, whose
#: ``@event("Name")`` methods name event classes it leaves 10.0 to define.
SECOND_FAILURE = "class AppliedCommand(Aggregate):"
#: A bound on the environment's installs (from uv's cache, or PyPI).
INSTALL_TIMEOUT = 300


def run(command: list[str | Path], timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout, cwd=cwd)


def shared_tests_stopping(python: Path, root: Path) -> str:
    """The shared package's tests, run by ``python``, which must stop before any runs: their output."""
    tested = run(
        [python, "-m", "pytest", "-p", "no:cacheprovider", "--store", "sqlite", "tests"],
        timeout=300,
        cwd=root / "shared",
    )
    output = tested.stdout + tested.stderr
    assert tested.returncode == pytest.ExitCode.USAGE_ERROR, output[-3000:]
    return output


def test_where_the_shared_tests_stop_under_the_pre_release(root: Path, tmp_path: Path) -> None:
    uv = [sys.executable, "-m", "uv"]
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    made = run([*uv, "venv", "--quiet", "--python", sys.executable, venv])
    assert made.returncode == 0, made.stderr
    override = tmp_path / "override.txt"
    override.write_text(f"eventsourcing=={PRE_RELEASE}\n")
    install: list[str | Path] = [*uv, "pip", "install", "--quiet", "--python", python, "--prerelease", "allow"]
    installed = run([*install, "--override", override, f"{root / 'shared'}[postgres,testing]"], timeout=INSTALL_TIMEOUT)
    assert installed.returncode == 0, installed.stderr
    version = run([python, "-c", "from importlib.metadata import version; print(version('eventsourcing'))"])
    assert version.stdout.strip() == PRE_RELEASE, version

    output = shared_tests_stopping(python, root)
    assert FIRST_FAILURE in output, output[-3000:]

    located = run([python, "-c", "import pathlib, bankaccounts; print(pathlib.Path(bankaccounts.__file__).parent)"])
    installed_package = Path(located.stdout.strip())
    for name, renames in RENAMES.items():
        module = installed_package / name
        source = module.read_text()
        for old, new in renames:
            assert source.count(old) == 1, (name, old)
            source = source.replace(old, new)
        module.write_text(source)
    output = shared_tests_stopping(python, root)
    assert SECOND_FAILURE in output, output[-3000:]
    assert "assert cls.works_with_decision_type" in output, output[-3000:]
