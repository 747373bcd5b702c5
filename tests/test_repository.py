"""The repository keeps its promises: recipe shape, isolation, and docs from tested files."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from bankaccounts.timeouts import DEFAULT_REQUEST_TIMEOUT_SECONDS, SERVER_TIMEOUT_MARGIN_SECONDS, SERVER_TIMEOUT_SIGNAL
from conftest import RECIPES, ROOT
from cookbook_testing.contract import ACCOUNT_FIELDS

README_SECTIONS = [
    "What it shows",
    "When to choose it",
    "Files",
    "Run",
    "Test",
    "Copy into your project",
    "Expected output",
    "Teardown",
]
RECIPE_FILES = ["README.md", "requirements.txt", "requirements-test.txt", "pytest.ini"]
WEB_RECIPE_FILES = ["wsgi.py", "uwsgi.ini", "gunicorn.conf.py"]
ASGI_RECIPE_FILES = ["asgi.py", "serve_uvicorn.py", "gunicorn.conf.py", "serve_granian.py"]
#: A worker recipe's entry point: Celery's tasks.py, RQ's jobs.py; an event processing
#: recipe's process: run_projection.py.
WORKER_ENTRY_POINTS = ["tasks.py", "jobs.py", "run_projection.py"]
DOCS = sorted((ROOT / "docs").rglob("*.rst"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_every_recipe_has_the_common_files(recipe: Path) -> None:
    missing = [name for name in RECIPE_FILES if not (recipe / name).is_file()]
    assert missing == []


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_every_recipe_is_a_web_recipe_with_both_servers_or_a_worker_recipe(recipe: Path) -> None:
    if (recipe / "wsgi.py").is_file():
        assert [name for name in WEB_RECIPE_FILES if not (recipe / name).is_file()] == []
    elif (recipe / "asgi.py").is_file():
        assert [name for name in ASGI_RECIPE_FILES if not (recipe / name).is_file()] == []
    else:
        assert [name for name in WORKER_ENTRY_POINTS if (recipe / name).is_file()], (
            "no wsgi.py, asgi.py, nor a worker's or a projection's entry point"
        )


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_every_recipe_readme_has_the_same_shape(recipe: Path) -> None:
    headings = re.findall(r"^## (.+)$", (recipe / "README.md").read_text(), flags=re.MULTILINE)
    assert headings == README_SECTIONS


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_every_recipe_installs_shared_by_relative_path(recipe: Path) -> None:
    lines = (recipe / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if re.fullmatch(r"\.\./\.\./shared(\[[\w,]+\])?", line)]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_recipes_import_only_themselves_shared_and_libraries(recipe: Path) -> None:
    """No cross-recipe imports and no sys.path tricks: a recipe can be copied alone."""
    own = {path.stem for path in recipe.iterdir() if path.suffix == ".py" or (path / "__init__.py").exists()}
    others = {
        path.stem if path.suffix == ".py" else path.name
        for other in RECIPES
        if other != recipe
        for path in other.iterdir()
        if path.suffix == ".py" or (path / "__init__.py").exists()
    } - own
    for source in recipe.rglob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in others, f"{source}: imports {name} from another recipe"
        assert "sys.path" not in source.read_text(), f"{source}: changes sys.path"


def stop_signal_settings(uwsgi_ini: Path) -> str:
    """The lines of a ``uwsgi.ini`` from its SIGTERM handling to its fork hooks."""
    text = uwsgi_ini.read_text()
    match = re.search(r"^; SIGTERM stops the server.*?^py-call-uwsgi-fork-hooks = true$", text, flags=re.M | re.S)
    assert match, f"{uwsgi_ini}: no stop-signal settings"
    return match.group(0)


def test_every_uwsgi_ini_stops_the_same_way() -> None:
    """A copy kept on purpose (each recipe stands alone), pinned alike: the stop signals
    held and handed to the master loop through its fifo, and the fork hooks."""
    settings = {ini.parent.name: stop_signal_settings(ini) for ini in sorted((ROOT / "recipes").glob("*/uwsgi.ini"))}
    assert len(settings) >= 6
    first = next(iter(settings.values()))
    assert {name for name, block in settings.items() if block != first} == set()
    assert "shared-import = bankaccounts.uwsgi_signals" in first
    assert "master-fifo = " in first


def wsgi_gunicorn_confs() -> list[Path]:
    """The WSGI recipes' gunicorn.conf.py (an ASGI recipe's runs uvicorn's worker, which
    installs its own signal handlers, and answers a request's timeout in the application)."""
    return [
        conf for conf in sorted((ROOT / "recipes").glob("*/gunicorn.conf.py")) if (conf.parent / "wsgi.py").is_file()
    ]


def wsgi_granian_scripts() -> list[Path]:
    """The WSGI recipes' serve_granian.py (an ASGI recipe's is answered by the application)."""
    return [
        script
        for script in sorted((ROOT / "recipes").glob("*/serve_granian.py"))
        if (script.parent / "wsgi.py").is_file()
    ]


def test_every_gunicorn_conf_holds_stop_signals_until_the_worker_has_handlers() -> None:
    """The same copy in every recipe: held from the fork (at-fork callbacks registered in the
    master), released first thing in post_worker_init, and before a SIGUSR2 re-exec."""
    blocks = {}
    for conf in wsgi_gunicorn_confs():
        text = conf.read_text()
        match = re.search(
            r"^# Never lose a stop signal\..*?^    release\(GUNICORN_STOP_SIGNALS\)$", text, flags=re.M | re.S
        )
        assert match, f"{conf}: no stop-signal holding"
        blocks[conf.parent.name] = match.group(0)
        hook = next(
            node
            for node in ast.parse(text).body
            if isinstance(node, ast.FunctionDef) and node.name == "post_worker_init"
        )
        first = hook.body[1] if ast.get_docstring(hook) is not None else hook.body[0]
        assert ast.unparse(first) == "release(GUNICORN_STOP_SIGNALS)", f"{conf}: post_worker_init must release first"
    assert len(blocks) >= 6
    first_block = next(iter(blocks.values()))
    assert {name for name, block in blocks.items() if block != first_block} == set()


def test_every_server_stops_a_request_at_the_same_time_after_request_timeout() -> None:
    """``REQUEST_TIMEOUT`` (default and margin from ``bankaccounts.timeouts``) sets uWSGI's
    ``harakiri`` and gunicorn's ``timeout`` in every recipe, and both end the request with
    ``SERVER_TIMEOUT_SIGNAL``, made a 503 (the stand-alone hang check shows it); Granian's
    workers keep the same limit themselves."""
    knob = (
        "if-env = REQUEST_TIMEOUT\nset-ph = request_timeout=%(_)\nendif =\n"
        f"if-not-env = REQUEST_TIMEOUT\nset-ph = request_timeout={DEFAULT_REQUEST_TIMEOUT_SECONDS}\nendif =\n"
    )
    harakiri = (
        f"\nharakiri = %(request_timeout + {SERVER_TIMEOUT_MARGIN_SECONDS})\n"
        f"harakiri-graceful-signal = {SERVER_TIMEOUT_SIGNAL.value}\nharakiri-graceful-timeout = 1\n"
    )
    inis = sorted((ROOT / "recipes").glob("*/uwsgi.ini"))
    assert [ini.parent.name for ini in inis if knob not in ini.read_text() or harakiri not in ini.read_text()] == []
    confs = wsgi_gunicorn_confs()
    assert [conf.parent.name for conf in confs if "\ntimeout = server_timeout()\n" not in conf.read_text()] == []
    abort = (
        "\n\ndef worker_abort(worker):\n"
        '    """SIGABRT: this worker\'s request ran past ``timeout``. End it with a 503."""\n'
        "    raise_request_timeout()\n"
    )
    assert [conf.parent.name for conf in confs if abort not in conf.read_text()] == []
    assert len(inis) == len(confs) >= 6
    # Granian keeps no such limit: a WSGI recipe's serve_granian.py has its workers keep it.
    granian = wsgi_granian_scripts()
    deadline = "\ndeadline = RequestDeadline(server_timeout())\n"
    assert [script.parent.name for script in granian if deadline not in script.read_text()] == []
    assert granian


LITERAL_BLOCK = re.compile(r"^(?!\s*\.\.).*::\s*$")
ALLOWED_CODE_BLOCKS = {"text", "console", "shell", "bash"}


@pytest.mark.parametrize("page", DOCS, ids=lambda path: str(path.relative_to(ROOT / "docs")))
def test_docs_show_code_only_from_files(page: Path) -> None:
    """Code comes in by literalinclude from tested files; only commands and trees are typed in."""
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        match = re.match(r"\s*\.\. code(?:-block)?::\s*(\S*)", line)
        if match:
            assert match.group(1) in ALLOWED_CODE_BLOCKS, f"{page.name}:{number}: {line.strip()}"
        assert not LITERAL_BLOCK.match(line), f"{page.name}:{number}: a literal block; use literalinclude"


@pytest.mark.parametrize("page", DOCS, ids=lambda path: str(path.relative_to(ROOT / "docs")))
def test_docs_include_files_that_exist(page: Path) -> None:
    for target in re.findall(r"\.\. literalinclude:: (\S+)", page.read_text()):
        assert (page.parent / target).is_file(), f"{page.name}: {target} does not exist"


def test_the_account_example_in_the_docs_matches_the_contract() -> None:
    example = json.loads((ROOT / "docs" / "examples" / "account.json").read_text())
    assert set(example) == ACCOUNT_FIELDS
    assert isinstance(example["balance"], int)
    assert isinstance(example["is_closed"], bool)


def test_readme_commands_are_the_ones_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 cookbook.py serve" in readme
    assert "python3 cookbook.py test" in readme
    assert "python3 cookbook.py test" in ci
