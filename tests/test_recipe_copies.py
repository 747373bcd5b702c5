"""A recipe copied alone stands alone: ``cookbook.py copy`` makes the copy (what
it holds, and what it refuses); ``test_tox_matrix.py`` pins that every recipe's
tox environment runs the recipe's whole suite in such a copy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RECIPES, ROOT

#: Left behind by runs, never part of a recipe (cookbook.py's NOT_COPIED).
RUN_LEFTOVERS = {"var", "__pycache__", "build", ".pytest_cache", ".cache", ".venv", ".venvs", ".tox"}


def copy(recipe: str, destination: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "cookbook.py", "copy", recipe, str(destination)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def files_under(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file()
        and not RUN_LEFTOVERS & set(path.relative_to(folder).parts)
        and not any(part.endswith(".egg-info") for part in path.parts)
    }


def installed_folders(recipe: Path) -> set[str]:
    """The repository's folders the recipe's requirements install by relative path."""
    lines = "\n".join(path.read_text() for path in recipe.glob("requirements*.txt"))
    return set(re.findall(r"^(?:-e )?\.\./\.\./([\w/-]+?)/?(?:\[.*)?$", lines, flags=re.M))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_a_copy_holds_the_recipe_and_the_folders_it_installs_laid_out_as_here(recipe: Path, tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    result = copy(recipe.name, project)
    assert result.returncode == 0, result.stderr
    assert f"copied {recipe.name} into {project / 'recipes' / recipe.name}" in result.stdout

    packages = installed_folders(recipe)
    assert "shared" in packages
    assert {path.name for path in project.iterdir()} == {"recipes", *(package.split("/")[0] for package in packages)}
    assert [path.name for path in (project / "recipes").iterdir()] == [recipe.name]
    for source in (recipe, *(ROOT / package for package in packages)):
        copied = project / source.relative_to(ROOT)
        assert files_under(copied) == files_under(source), source.name
        assert not {path.name for path in copied.rglob("*")} & {"var", ".cache", ".venv"}


def test_a_copy_goes_only_where_nothing_is(tmp_path: Path) -> None:
    (tmp_path / "recipes" / "plain-wsgi").mkdir(parents=True)  # as tox leaves it: folders, no file
    assert copy("plain-wsgi", tmp_path).returncode == 0
    again = copy("plain-wsgi", tmp_path)
    assert again.returncode == 2
    assert "is not empty" in again.stderr
    inside = copy("plain-wsgi", ROOT / "recipes" / "plain-wsgi" / "copy")
    assert inside.returncode == 2
    assert "inside what it would copy" in inside.stderr
    unknown = copy("no-such-recipe", tmp_path / "other")
    assert unknown.returncode == 2
    assert "no recipe 'no-such-recipe'" in unknown.stderr
