"""The test matrix as tox itself resolves tox.ini: every recipe's environment
runs the recipe's tests in a copy made by ``cookbook.py copy`` (never from the
repository's folders), and CI runs every environment tox.ini defines."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import RECIPES, ROOT


def tox(*args: str, env: dict[str, str] | None = None) -> str:
    command = [sys.executable, "-m", "tox", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def environments() -> dict[str, dict[str, Any]]:
    """Every environment tox.ini defines, with its resolved settings."""
    keys = ["change_dir", "commands_pre", "commands", "env_python", "depends"]
    environments: dict[str, dict[str, Any]] = json.loads(tox("config", "-e", "ALL", "--format", "json", "-k", *keys))[
        "env"
    ]
    return environments


def test_every_recipe_environment_runs_the_recipes_tests_in_a_copy(environments: dict[str, dict[str, Any]]) -> None:
    copied: set[str] = set()
    for name, settings in environments.items():
        folder = Path(settings["change_dir"])
        if folder.parent.name != "recipes":
            assert ROOT / "recipes" not in folder.parents, name
            continue
        recipe = folder.name
        assert folder.parts[-3:] == ("copy", "recipes", recipe), name
        assert settings["commands_pre"][0] == f"python {ROOT / 'cookbook.py'} copy {recipe} {folder.parent.parent}", (
            name
        )
        python = settings["env_python"]
        install = f"python -m uv pip install --quiet --reinstall --python {python} -r requirements-test.txt"
        assert settings["commands_pre"][1] == install, name
        assert all(command.startswith("python -m pytest ") for command in settings["commands"]), name
        copied.add(recipe)
    assert copied == {recipe.name for recipe in RECIPES}


def test_each_recipe_with_topology_checks_has_an_environment_for_them(environments: dict[str, dict[str, Any]]) -> None:
    """``tox -m topology`` (the ``-topology`` environments) runs the checks of nginx,
    PgBouncer and systemd in front of and behind each web recipe's servers; the
    recipes' other environments leave them out (``-m "not topology"``)."""
    checked = {
        recipe.name
        for recipe in RECIPES
        if (servers := recipe / "tests" / "test_servers.py").is_file()
        and "cookbook_testing.proxy_checks" in servers.read_text()
    }
    topology = {name.removesuffix("-topology") for name in environments if name.endswith("-topology")}
    assert topology == checked
    for name, settings in environments.items():
        if name.endswith("-topology"):
            assert settings["commands"] == ["python -m pytest -p no:cacheprovider -m topology"], name
        elif name.endswith("-ring"):
            assert settings["commands"] == ["python -m pytest -p no:cacheprovider -m ring"], name
        elif Path(settings["change_dir"]).parent.name == "recipes" and not name.endswith("rabbitmq-postgres"):
            assert all("-m 'not topology" in command for command in settings["commands"]), name


def test_no_environment_waits_for_another(environments: dict[str, dict[str, Any]]) -> None:
    """tox queues an environment that ``depends`` on another behind every environment
    not yet started, wherever env_list puts it. The ring environments, which must not run
    at the same time (three JVMs each, on two cores), take the machine's ring lock instead
    (``cassandra_testing.node.RING_LOCK``), which holds across tox runs and the benchmarks too."""
    assert {name: conf["depends"] for name, conf in environments.items() if conf.get("depends")} == {}
    rings = [name for name in environments if name.endswith("-ring")]
    assert len(rings) >= 2, rings


def ci_environments() -> set[str]:
    """The environments .ci/run's ``cookbook.py test`` lines run (no selection: tox's env_list)."""
    runs: set[str] = set()
    for line in (ROOT / ".ci" / "run").read_text().splitlines():
        match = re.fullmatch(r"python3 cookbook\.py test(?P<args>.*?)(?: -- .*)?", line.strip())
        if not match:
            continue
        args = match["args"].split()
        if args[:1] == ["--also"]:  # the whole matrix, and these beside it
            runs |= set(args[1].split(","))
            args = args[2:]
        if not args:
            runs |= set(tox("list", "--no-desc", "-d").split())
        elif args[0] == "-m":
            runs |= set(tox("list", "--no-desc", "-m", *args[1:]).split())
        else:
            assert args[0] == "-e", line
            runs |= set(args[1].split(","))
    return runs


def test_ci_runs_every_environment(environments: dict[str, dict[str, Any]]) -> None:
    ran = ci_environments()
    # The full benchmarks take about 50 minutes; their smoke run is the same section with tiny durations.
    assert "bench-quick" in ran
    assert set(environments) - ran - {"bench"} == set()


def test_the_matrix_node_goes_to_the_cassandra_recipes_only() -> None:
    """``cookbook.py test`` hands the node it starts to the Cassandra recipes' environments
    (as ``COOKBOOK_SHARED_CASSANDRA``); the Cassandra package's environment starts its own,
    whose tests check the node harness, and ``CASSANDRA_HOSTS``, when set, wins."""
    cassandra_envs = ",".join(tox("list", "--no-desc", "-m", "cassandra").split())

    def hosts_given(**variables: str) -> dict[str, str | None]:
        env = {name: value for name, value in os.environ.items() if name != "CASSANDRA_HOSTS"}
        resolved = json.loads(
            tox("config", "-e", cassandra_envs, "--format", "json", "-k", "set_env", env={**env, **variables})
        )
        return {name: settings["set_env"].get("CASSANDRA_HOSTS") for name, settings in resolved["env"].items()}

    hosts = hosts_given(COOKBOOK_SHARED_CASSANDRA="127.0.0.1:19042")
    packages = {"cassandra", "cassandra-ring"}  # the store's own tests start their nodes
    recipes = {name for name in hosts if name not in packages}
    assert recipes >= {"flask-cassandra", "django-cassandra", "django-cassandra-django6"}
    assert hosts == {**dict.fromkeys(packages), **dict.fromkeys(recipes, "127.0.0.1:19042")}
    cluster = hosts_given(COOKBOOK_SHARED_CASSANDRA="127.0.0.1:19042", CASSANDRA_HOSTS="cassandra.example.com:9042")
    assert {cluster[name] for name in recipes} == {"cassandra.example.com:9042"}


def load_script(path: Path) -> Any:
    """A script of the repository's (not a package's module), imported from its file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_a_run_of_the_whole_matrix_starts_the_shared_node() -> None:
    cookbook = load_script(ROOT / "cookbook.py")
    assert cookbook.runs_the_whole_matrix([])
    assert cookbook.runs_the_whole_matrix(["-p", "4", "--", "-k", "-e"])
    for selection in (["-e", "flask-cassandra"], ["-eflask-cassandra"], ["-m", "cassandra"], ["--labels=rabbitmq"]):
        assert not cookbook.runs_the_whole_matrix(selection), selection


def test_the_versions_page_lists_every_environment_ci_runs_as_recorded() -> None:
    """docs/versions/: generated by docs/versions.py from a run of the whole matrix, not edited;
    an environment added since needs it run again (python3 docs/versions.py)."""
    versions = load_script(ROOT / "docs" / "versions.py")
    recorded = json.loads((ROOT / "docs" / "versions" / "versions.json").read_text())
    assert (ROOT / "docs" / "versions" / "versions.inc").read_text() == versions.table(recorded)
    assert set(recorded) == ci_environments() - versions.NOT_TESTS
    for name, environment in recorded.items():
        assert environment["packages"].get("eventsourcing", "").startswith("9.5."), name
