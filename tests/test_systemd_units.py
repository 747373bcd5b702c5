"""shared/deploy/systemd's unit files: accepted by systemd (``systemd-analyze verify``),
running the commands the recipes' READMEs run, stopping the main process first, and
waiting longer than what they run takes to stop gracefully.

There is no systemd to start them under here (no PID 1 of its own): what each server
tells systemd (``Type=notify``) is checked against the real servers, in the plain WSGI
recipe's tests (``ReadyForSystemdChecks``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bankaccounts.timeouts import server_timeout
from conftest import ROOT
from cookbook_testing.processes import STOP_BOUND_SECONDS
from cookbook_testing.workers import BILLIARD_RESULT_WAIT_SECONDS

UNITS = ROOT / "shared" / "deploy" / "systemd"
#: Where the units expect the project (``cookbook.py copy RECIPE /srv/bank``) and its venv.
INSTALL_ROOT = "/srv/bank"
#: Each unit, the recipe whose README runs its command, and that command's program.
COMMANDS = {
    "bank-uwsgi.service": ("plain-wsgi", "uwsgi"),
    "bank-gunicorn.service": ("plain-wsgi", "gunicorn"),
    "bank-celery.service": ("celery", "celery"),
    "bank-rq.service": ("rq", "rq"),
    "bank-projection@.service": ("projections", "python"),
}


def service_settings(unit: Path) -> dict[str, str]:
    """The ``[Service]`` section's settings (each named once in these units)."""
    section = unit.read_text().split("[Service]\n", 1)[1].split("\n[", 1)[0]
    return dict(line.split("=", 1) for line in section.splitlines() if line and not line.startswith("#"))


def literal(path: Path, name: str) -> int:
    """The whole number a recipe's file gives ``name`` (``graceful_timeout = 30``, ``task_time_limit=30``)."""
    found = re.search(rf"^\s*{name}\s*=\s*(\d+)", path.read_text(), re.MULTILINE)
    assert found is not None, f"{name} is no longer a number in {path}"
    return int(found[1])


def verify(units: list[Path], folder: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on copies of ``units`` whose install root is ``folder``,
    where each program they start exists (systemd checks that; it runs none of them)."""
    binaries = folder / INSTALL_ROOT.lstrip("/") / "venv" / "bin"
    binaries.mkdir(parents=True, exist_ok=True)
    for _, program in COMMANDS.values():
        stub = binaries / program
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    copies = []
    for unit in units:
        # A template unit is verified as an instance of it.
        copy = folder / unit.name.replace("@.", "@views.")
        copy.write_text(unit.read_text().replace(INSTALL_ROOT, str(folder / INSTALL_ROOT.lstrip("/"))))
        copies.append(str(copy))
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=60, check=False)


def test_every_unit_is_here() -> None:
    assert sorted(unit.name for unit in UNITS.glob("*.service")) == sorted(COMMANDS)


def test_systemd_accepts_every_unit_without_a_warning(tmp_path: Path) -> None:
    checked = verify(sorted(UNITS.glob("*.service")), tmp_path)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_a_unit_systemd_would_ignore_a_setting_of_fails_that_check(tmp_path: Path) -> None:
    """The check can fail: systemd ignores a setting it cannot parse, and only warns."""
    broken = tmp_path / "broken" / "bank-uwsgi.service"
    broken.parent.mkdir()
    broken.write_text((UNITS / "bank-uwsgi.service").read_text().replace("KillMode=mixed", "KillMode=gentle"))
    checked = verify([broken], tmp_path)
    assert "Failed to parse kill mode" in checked.stdout + checked.stderr


@pytest.mark.parametrize("unit", sorted(COMMANDS))
def test_each_runs_its_recipe_s_command_from_the_recipe_s_folder(unit: str) -> None:
    recipe, program = COMMANDS[unit]
    settings = service_settings(UNITS / unit)
    assert settings["WorkingDirectory"] == f"{INSTALL_ROOT}/recipes/{recipe}"
    command = settings["ExecStart"]
    assert command.startswith(f"{INSTALL_ROOT}/venv/bin/{program} ")
    as_in_the_readme = command.removeprefix(f"{INSTALL_ROOT}/venv/bin/").replace("%i", "views")
    assert as_in_the_readme in (ROOT / "recipes" / recipe / "README.md").read_text()


@pytest.mark.parametrize("unit", sorted(COMMANDS))
def test_each_stops_its_main_process_first_as_an_unprivileged_user_with_settings_from_a_file(unit: str) -> None:
    settings = service_settings(UNITS / unit)
    assert (settings["KillSignal"], settings["KillMode"]) == ("SIGTERM", "mixed")
    assert settings["User"] == settings["Group"] == "bank"
    assert settings["EnvironmentFile"] == "/etc/bank/bank.env"
    assert settings["Restart"] == "on-failure"
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict"


def test_each_waits_longer_than_what_it_runs_takes_to_stop() -> None:
    """``TimeoutStopSec`` past the program's own limit on a graceful stop: a stop
    systemd ends with SIGKILL is one the program would not have finished cleanly."""
    recipes = ROOT / "recipes"
    uwsgi_grace = literal(recipes / "plain-wsgi" / "uwsgi.ini", "harakiri-graceful-timeout")
    longest = {
        # A request ends at harakiri (REQUEST_TIMEOUT + 5 s), with its grace.
        "bank-uwsgi.service": server_timeout({}) + uwsgi_grace,
        # The master's own limit, in every recipe's gunicorn.conf.py.
        "bank-gunicorn.service": max(literal(path, "graceful_timeout") for path in recipes.glob("*/gunicorn.conf.py")),
        # A warm shutdown waits for the tasks in hand, each at most task_time_limit; then
        # a prefork child may wait for the main process to count its last result.
        "bank-celery.service": literal(recipes / "celery" / "celery_app.py", "task_time_limit")
        + BILLIARD_RESULT_WAIT_SECONDS,
        # A warm shutdown waits for the job in hand, at most JOB_TIMEOUT.
        "bank-rq.service": literal(recipes / "rq" / "client.py", "JOB_TIMEOUT"),
        # The projection tests' bound on its stop.
        "bank-projection@.service": STOP_BOUND_SECONDS,
    }
    waits = {unit: int(service_settings(UNITS / unit)["TimeoutStopSec"]) for unit in COMMANDS}
    assert all(waits[unit] > longest[unit] for unit in COMMANDS), (waits, longest)


def test_the_environment_file_holds_no_secret() -> None:
    example = (UNITS / "bank.env.example").read_text()
    assert re.findall(r"://[^:/@\s]+:([^@\s]+)@", example) == ["CHANGE-ME"]
