"""Deliberate copies between recipes, checked alike.

Why copies: a recipe is copied into a project alone (with ``shared/`` and the
store it installs), so it cannot import a sibling's server configuration,
settings or hooks. Several recipes therefore carry their own copy of the same
file, function or setting. A fix made in one copy must reach the others, so
``COPIES`` below lists every group of copies, once: what must stay alike,
what may differ, and why.

How to change one: change every file of its group the same way, in one
commit. If one recipe needs something else, move that file, definition or key
out of the group's ``alike`` (into ``differ``, with a one-line reason) rather
than letting the copies drift.

The standard library and pytest only: the ``repo`` environment installs
nothing else.
"""

from __future__ import annotations

import ast
import configparser
import difflib
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIS_FILE = Path(__file__).resolve().relative_to(ROOT)
WHAT_TO_DO = (
    f"Change every file of the group the same way, or move it out of the group's `alike` "
    f"into its `differ` with a reason (COPIES in {THIS_FILE})."
)
WHAT_TO_DO_FOR_DEFAULTS = (
    f"Give the variable one default in every recipe, code and README, or add it to the group's `differ`"
    f" with a reason (COPIES in {THIS_FILE})."
)
WHAT_TO_DO_FOR_FILES = (
    f"Change every copy the same way, or take the path out of the group's `paths` with a reason, and pin the"
    f" parts that must stay alike in a SameDefinitions group (COPIES in {THIS_FILE})."
)


@dataclass(frozen=True)
class SameFiles:
    """Each of ``paths`` is byte-identical in every recipe of ``recipes``."""

    why: str
    recipes: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class SameDefinitions:
    """Definitions of the Python file ``path`` with the same source in every recipe.

    A name in ``alike`` or ``differ`` is one of:

    - ``name``: the module's top-level ``def``/``class`` of that name, or every
      top-level statement that assigns it (also directly inside a top-level
      ``if``/``try``: ``SECRET_KEY`` includes the block that may set it);
    - ``callee()``: the top-level expression statements calling ``callee``,
      e.g. ``hold_in_forked_children()``, ``logging.basicConfig()``;
    - ``Class.method``: a method of a top-level class;
    - ``function[0]``: the first statement of a function, after its docstring.

    Imports are not compared: they follow what the compared code uses.
    Every top-level name found in all the group's files must be in ``alike``
    or ``differ`` (of this group, or of a group of more recipes for the same
    file), so that a new shared definition is a decision.
    """

    why: str
    recipes: tuple[str, ...]
    path: str
    alike: tuple[str, ...]
    differ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SameIniValues:
    """The keys of the ini file ``path`` with the same values in every recipe.

    A key repeated in a file (``if-env``, ``hook-asap``) is compared as all
    its values, in order. Every key in any of the files must be in ``alike``
    or ``differ``.
    """

    why: str
    recipes: tuple[str, ...]
    path: str
    alike: tuple[str, ...]
    differ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SameDocumentedDefaults:
    """A variable in the knob tables of several ``path`` files has the same default in each,
    unless ``differ`` says why it may not."""

    why: str
    recipes: tuple[str, ...]
    path: str
    differ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SameCallArguments:
    """The keyword arguments of the calls to ``callee`` in the Python file ``path`` (anywhere
    in it), the same expressions in every recipe. Every keyword of any of the calls must be
    in ``alike`` or ``differ``: for a server configured by a script, one call is its settings."""

    why: str
    recipes: tuple[str, ...]
    path: str
    callee: str
    alike: tuple[str, ...]
    differ: Mapping[str, str] = field(default_factory=dict)


Group = SameFiles | SameDefinitions | SameIniValues | SameDocumentedDefaults | SameCallArguments

WEB_RECIPES = (
    "django-cassandra",
    "django-orm",
    "flask-cassandra",
    "flask-sqlalchemy",
    "plain-wsgi",
    "pyramid-sqlalchemy",
)
#: Web recipes on ASGI servers (uvicorn, gunicorn's uvicorn worker): no uwsgi.ini, and a
#: gunicorn.conf.py of another kind.
ASGI_RECIPES = ("fastapi",)
ALL_RECIPES = (*WEB_RECIPES, *ASGI_RECIPES, "celery", "rq", "projections")
DJANGO = ("django-cassandra", "django-orm")

COPIES: list[Group] = [
    # --- Servers: every web recipe runs under uWSGI and gunicorn the same way.
    SameIniValues(
        why="one uWSGI setup for every web recipe: the knobs, timeouts, graceful stop, held stop signals, fork hooks",
        recipes=WEB_RECIPES,
        path="uwsgi.ini",
        alike=(
            "strict",
            "need-app",
            # PORT, WEB_CONCURRENCY, HOST, REQUEST_TIMEOUT and their defaults.
            "if-env",
            "if-not-env",
            "set-ph",
            "endif",
            "http-socket",
            # UWSGI_SOCKET: uWSGI's own protocol, for nginx's uwsgi_pass.
            "socket",
            "master",
            "processes",
            "harakiri",
            "harakiri-graceful-signal",
            "harakiri-graceful-timeout",
            "enable-threads",
            "hook-asap",
            "master-fifo",
            "hook-accepting",
            "shared-import",
            # The shared code's os.register_at_fork callbacks (the application slot's
            # lock reset, the held stop signals) run in a uWSGI worker only with this.
            "py-call-uwsgi-fork-hooks",
            "binary-path",
        ),
        differ={
            "module": "the WSGI callable's name: app for Flask and Pyramid, application for Django and plain WSGI"
            " (the same as the recipe's gunicorn wsgi_app, checked below)",
        },
    ),
    SameDefinitions(
        why="one gunicorn setup for every web recipe: bind, workers, timeouts, held stop signals, the 503 on timeout",
        recipes=WEB_RECIPES,
        path="gunicorn.conf.py",
        alike=(
            "bind",
            "workers",
            "preload_app",
            "graceful_timeout",
            "timeout",
            "accesslog",
            "access_log_format",
            "control_socket_disable",
            "hold_in_forked_children()",
            "pre_exec",
            "worker_abort",
            # Whatever else it does, a worker lets its held stop signals in first.
            "post_worker_init[0]",
        ),
        differ={
            "wsgi_app": "the WSGI callable's name, as uwsgi.ini's module",
            "post_worker_init": "after the release, what the worker constructs: its application (and Cassandra"
            " session) through the recipe's own module, or nothing where it is constructed on the first request",
            "worker_exit": "only where post_worker_init constructs the application; the others close it with atexit"
            " in wsgi.py (django-orm closes Django's connections there too)",
        },
    ),
    SameDefinitions(
        why="the two recipes that construct on the first request: post_worker_init only releases the stop signals",
        recipes=("flask-sqlalchemy", "pyramid-sqlalchemy"),
        path="gunicorn.conf.py",
        alike=("post_worker_init",),
    ),
    SameDefinitions(
        why="uWSGI's worker start where a worker constructs at once: the exit hook registered in the worker only",
        recipes=("django-cassandra", "flask-cassandra", "plain-wsgi"),
        path="wsgi.py",
        alike=("start_uwsgi_worker",),
    ),
    SameDefinitions(
        why="one log line shape (with the process id) from the recipes that configure logging in wsgi.py",
        recipes=("flask-cassandra", "flask-sqlalchemy", "plain-wsgi"),
        path="wsgi.py",
        alike=("logging.basicConfig()",),
    ),
    SameDefinitions(
        why="the application each worker constructed on its first request is closed as the worker exits",
        recipes=("flask-sqlalchemy", "pyramid-sqlalchemy"),
        path="wsgi.py",
        alike=("atexit.register()",),
        differ={"app": "made by Flask's factory, or by Pyramid from production.ini"},
    ),
    # --- Granian: the recipes it serves, ASGI and WSGI, are configured by a script each.
    SameCallArguments(
        why="one Granian setup for both interfaces: the knobs, workers replaced, the stop's limit, an 8 KiB head",
        recipes=("fastapi", "flask-sqlalchemy"),
        path="serve_granian.py",
        callee="Server",
        alike=(
            "address",
            "port",
            "workers",
            "respawn_failed_workers",
            "workers_kill_timeout",
            "http1_settings",
            "log_access",
        ),
        differ={
            "interface": "ASGI for FastAPI, WSGI for Flask",
            "blocking_threads": "WSGI only: one request at a time in a worker, as under uWSGI and gunicorn (an ASGI"
            " worker's calls run in the recipe's own THREADS)",
            "log_access_format": "WSGI only: the X-Forwarded-For nginx sets, at the end of the line, as gunicorn's"
            " (Granian's ASGI line names the client itself, through its proxy-headers wrapper)",
        },
    ),
    # --- Flask: the HTTP contract's shared parts.
    SameDefinitions(
        why="the Flask recipes answer the contract alike: bodies, reads, errors as JSON, 503 when the store is down",
        recipes=("flask-cassandra", "flask-sqlalchemy"),
        path="bank/views.py",
        alike=(
            "logger",
            "api",
            "body",
            "health",
            "get_account",
            "domain_error",
            "http_error",
            "unavailable_store",
            "host_check",
        ),
        differ={
            "ready": "each store's readiness question",
            **{
                name: "writes: one save the Cassandra application retries itself, or a request transaction with an"
                " audit row (flask-sqlalchemy)"
                for name in ("open_account", "deposit", "withdraw", "transfer", "set_overdraft_limit", "close_account")
            },
        },
    ),
    # --- Django: the project around the application is the same whichever store.
    # Not config/__init__.py and bank/urls.py: the ORM recipe's project also
    # loads its Celery app, and routes the transfer its task workers run. Not
    # bank/apps.py: the ORM recipe's app also sets up connections behind PgBouncer.
    SameFiles(
        why="the Django project skeleton: strict environment parsing, URLconfs, manage.py",
        recipes=DJANGO,
        paths=(
            "config/environment.py",
            "config/urls.py",
            "bank/__init__.py",
            "manage.py",
        ),
    ),
    SameDefinitions(
        why="Django's production settings, security and HTTPS the same whichever store",
        recipes=DJANGO,
        path="config/settings.py",
        alike=(
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "MIDDLEWARE",
            "ROOT_URLCONF",
            "WSGI_APPLICATION",
            "USE_TZ",
            "TIME_ZONE",
            "LANGUAGE_CODE",
            "USE_I18N",
            "APPEND_SLASH",
            "DATA_UPLOAD_MAX_MEMORY_SIZE",
            "SECURE_PROXY_SSL_HEADER",
            "SECURE_SSL_REDIRECT",
            "SECURE_REDIRECT_EXEMPT",
            "SECURE_HSTS_SECONDS",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS",
            "SECURE_HSTS_PRELOAD",
            "CSRF_COOKIE_SECURE",
            "SESSION_COOKIE_SECURE",
        ),
        differ={
            "INSTALLED_APPS": "the ORM recipe installs its eventstore app",
            "DATABASES": "DATABASE_URL for the ORM recipe; none for Cassandra (Django's dummy backend)",
            "DEFAULT_AUTO_FIELD": "only the ORM recipe has models",
            "EVENTSOURCING_ENV": "the Cassandra store's settings, checked at start-up",
            "LOGGING": "the Cassandra driver's connection messages turned down to warnings",
        },
    ),
    SameDefinitions(
        why="the JSON API's plumbing: bodies, command ids, Django's error handlers",
        recipes=DJANGO,
        path="bank/api.py",
        alike=(
            "logger",
            "error_response",
            "json_body",
            "command_id",
            "bad_request",
            "permission_denied",
            "not_found",
            "server_error",
        ),
        differ={
            "api_view": "the ORM recipe's views run in transactions they own, and handle a conflict escaping one;"
            " the Cassandra application retries conflicts itself",
        },
    ),
    SameDefinitions(
        why="the reading views, the same over either store",
        recipes=DJANGO,
        path="bank/views.py",
        alike=("health", "get_account"),
        differ={
            "ready": "each store's readiness question",
            **{
                name: "writes: one save the Cassandra application retries itself, or @atomic_with_retries with an"
                " audit row (django-orm)"
                for name in ("open_account", "deposit", "withdraw", "transfer", "set_overdraft_limit", "close_account")
            },
        },
    ),
    SameDefinitions(
        why="one application per process, the same task-queue hooks",
        recipes=DJANGO,
        path="bank/accounts.py",
        alike=("start_worker_process", "stop_worker_process"),
        differ={
            "construct_bank_accounts": "each store's environment; in the ORM recipe the transaction retries, not the"
            " application",
            "slot": "typed with the ORM recipe's DjangoBankAccounts",
            "init_bank_accounts": "typed with the ORM recipe's DjangoBankAccounts",
            "bank_accounts": "typed with the ORM recipe's DjangoBankAccounts",
            "close_bank_accounts": "the docstring names the Cassandra session it closes",
        },
    ),
    SameDefinitions(
        why="Django tests get this process's application the same way",
        recipes=DJANGO,
        path="bank/testing.py",
        alike=("BankAccountsTestCase.setUp", "BankAccountsTestCase.tearDown"),
        differ={
            "BankAccountsTestCase": "TestCase rolls the ORM store's writes back; Cassandra has no transaction"
            " (SimpleTestCase, a keyspace per run)",
        },
    ),
    SameDefinitions(
        why="the same checks of where the application is constructed, each shown on its recipe's page with what"
        " its store opens (the test kit's Django checks take what is the same whichever the store)",
        recipes=DJANGO,
        path="tests/test_lifecycle.py",
        alike=("FORK", "forked_child_of_a_parent_with_an_application"),
        differ={
            "test_importing_wsgi_constructs_nothing_and_connects_to_nothing": "what a master must not have opened:"
            " Django's database connection, or the Cassandra driver's threads",
            "task_queue_worker": "the ORM's unit of work runs in a transaction and closes Django's connections",
            "test_the_task_queue_hook_constructs_each_worker_its_own_application": "the same: transactions and"
            " Django's connections, or the driver's session",
            "test_a_worker_forked_from_a_parent_with_an_application_refuses_to_start": "the parent's application:"
            " the ORM test's fixture, or one constructed here that must still work after the fork",
        },
    ),
    SameDefinitions(
        why="the same server checks from the test kit: both projects construct each worker's application when forked",
        recipes=DJANGO,
        path="tests/test_servers.py",
        alike=(
            "TestContractOverServers",
            "TestServers",
            "TestLazyApps",
            "TestUWSGIStop",
            "TestContractThroughNginx",
            "TestBehindNginx",
            "TestHttpsBehindNginx",
        ),
    ),
    SameDefinitions(
        why="the WSGI entry point sets Django up the same way",
        recipes=DJANGO,
        path="wsgi.py",
        alike=("os.environ.setdefault()", "application"),
        differ={
            "start_worker": "django-cassandra's worker hooks; django-orm constructs in construct_in_worker and closes"
            " with atexit, which also closes Django's connections",
        },
    ),
    # --- READMEs: a knob is one setting whichever recipe serves.
    SameDocumentedDefaults(
        why="a variable in several recipes' knob tables (PORT, DATABASE_URL, CASSANDRA_KEYSPACE...) has one default",
        recipes=ALL_RECIPES,
        path="README.md",
    ),
]


# --- Reading the files ---------------------------------------------------------------


@cache
def read(relative: str) -> str:
    path = ROOT / relative
    assert path.is_file(), f"{relative} is in a group of copies but does not exist: if it moved, say where in COPIES"
    return path.read_text()


def files_of(recipes: tuple[str, ...], path: str) -> list[str]:
    return [f"recipes/{recipe}/{path}" for recipe in recipes]


def callee(node: ast.expr) -> str | None:
    """``a.b.c`` for a call's function written as names and attributes, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        owner = callee(node.value)
        return f"{owner}.{node.attr}" if owner else None
    return None


def assigned_names(statements: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for statement in statements:
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            targets = [statement.target]
        else:
            continue
        names |= {node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)}
    return names


def unit_names(statement: ast.stmt) -> set[str]:
    """The names a top-level statement is compared under (see ``SameDefinitions``)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, ast.Expr):
        name = callee(statement.value.func) if isinstance(statement.value, ast.Call) else None
        return {f"{name}()"} if name else set()
    if isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return assigned_names([statement])
    if isinstance(statement, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
        blocks = [statement.body, statement.orelse] if hasattr(statement, "orelse") else [statement.body]
        if isinstance(statement, ast.Try):
            blocks += [handler.body for handler in statement.handlers] + [statement.finalbody]
        return assigned_names([inner for block in blocks for inner in block])
    return set()  # imports, and anything else


def source_of(lines: list[str], node: ast.stmt) -> str:
    """Whole lines, from the first decorator to the end: trailing comments count too."""
    decorators = getattr(node, "decorator_list", [])
    start = min([decorator.lineno for decorator in decorators] + [node.lineno])
    end = node.end_lineno or node.lineno
    return "".join(lines[start - 1 : end])


@cache
def parsed(relative: str) -> tuple[ast.Module, list[str]]:
    text = read(relative)
    return ast.parse(text, filename=relative), text.splitlines(keepends=True)


def top_level_units(relative: str) -> dict[str, list[ast.stmt]]:
    units: dict[str, list[ast.stmt]] = defaultdict(list)
    for statement in parsed(relative)[0].body:
        for name in unit_names(statement):
            units[name].append(statement)
    return units


def function_named(statements: list[ast.stmt], name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return next(
        (
            node
            for node in statements
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
        ),
        None,
    )


def definition(relative: str, name: str) -> str | None:
    """The source of ``name`` in the file (see ``SameDefinitions``), or None if it has none."""
    tree, lines = parsed(relative)
    if name.endswith("[0]"):
        function = function_named(tree.body, name.removesuffix("[0]"))
        if function is None:
            return None
        body = function.body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
            body = body[1:]
        return source_of(lines, body[0])
    if "." in name and not name.endswith("()"):
        class_name, method_name = name.split(".", 1)
        owner = next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name), None)
        method = function_named(owner.body, method_name) if owner else None
        return source_of(lines, method) if method else None
    statements = top_level_units(relative).get(name)
    return "".join(source_of(lines, statement) for statement in statements) if statements else None


class MultiValues(dict[str, Any]):
    """configparser's section dict, keeping every value of a repeated key (uWSGI allows them)."""

    def __setitem__(self, key: str, value: object) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


def ini_values(relative: str) -> dict[str, str]:
    """Each key of the file's ``[uwsgi]`` section, with its values in order, one per line."""
    parser = configparser.ConfigParser(
        interpolation=None, strict=False, empty_lines_in_values=False, dict_type=MultiValues
    )
    parser.read_string(read(relative), source=relative)
    return dict(parser["uwsgi"])


def gunicorn_setting(relative: str, name: str) -> object:
    statement = top_level_units(relative)[name][-1]
    assert isinstance(statement, ast.Assign), f"{relative}: {name} is not a plain assignment"
    return ast.literal_eval(statement.value)


KNOB_ROW = re.compile(r"^\| ((?:`[A-Z][A-Z0-9_]*`(?:, )?)+) \| ([^|]*?) \|", flags=re.MULTILINE)


def documented_defaults(relative: str) -> dict[str, str]:
    """The README's knob table: each variable's default, as written."""
    return {
        variable: default
        for variables, default in KNOB_ROW.findall(read(relative))
        for variable in re.findall(r"`([A-Z0-9_]+)`", variables)
    }


# --- Saying what drifted ---------------------------------------------------------------


def drift(what: str, versions: Mapping[str, str | None], what_to_do: str = WHAT_TO_DO) -> str | None:
    """None if every file has the same version of ``what``; else which files drifted, a diff, and what to do."""
    by_text: dict[str | None, list[str]] = defaultdict(list)
    for relative, text in versions.items():
        by_text[text].append(relative)
    if len(by_text) == 1:
        return None
    variants = sorted(by_text.items(), key=lambda item: -len(item[1]))
    missing = by_text.get(None, [])
    if missing:
        lines = [f"{what}: missing from {', '.join(missing)}."]
    elif len(variants[0][1]) > len(variants[1][1]):
        drifted = [relative for _, files in variants[1:] for relative in files]
        lines = [f"{what}: {', '.join(drifted)} drifted from {', '.join(variants[0][1])}."]
    else:
        lines = [f"{what} is no longer alike in {', '.join(versions)}."]
    reference, reference_files = next((text, files) for text, files in variants if text is not None)
    for text, files in variants:
        if text is None or text == reference:
            continue
        diff = difflib.unified_diff(
            reference.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=reference_files[0],
            tofile=files[0],
        )
        lines.append("".join(diff).rstrip("\n"))
    lines.append(what_to_do)
    return "\n".join(lines)


G = TypeVar("G", SameFiles, SameDefinitions, SameIniValues, SameDocumentedDefaults, SameCallArguments)


def of_kind(kind: type[G]) -> list[G]:
    return [group for group in COPIES if isinstance(group, kind)]


def group_id(group: Group) -> str:
    recipes = {WEB_RECIPES: "web recipes", ALL_RECIPES: "all recipes"}.get(group.recipes, "+".join(group.recipes))
    return f"{getattr(group, 'path', 'files')} of {recipes}"


def failures(messages: Iterator[str | None]) -> str:
    return "\n\n".join(message for message in messages if message)


# --- The checks ------------------------------------------------------------------------


def test_every_group_says_why_and_names_recipes_that_exist() -> None:
    recipes = {path.parent.name for path in (ROOT / "recipes").glob("*/README.md")}
    for group in COPIES:
        name = group_id(group)
        assert group.why.strip(), f"{name}: say why the copies exist and must stay alike"
        assert len(set(group.recipes)) == len(group.recipes) >= 2, f"{name}: a group is two recipes or more"
        assert set(group.recipes) <= recipes, f"{name}: no recipe {set(group.recipes) - recipes}"
        alike = getattr(group, "alike", ())
        differ = getattr(group, "differ", {})
        assert not set(alike) & set(differ), f"{name}: {set(alike) & set(differ)} either alike or may differ, not both"
        assert all(reason.strip() for reason in differ.values()), f"{name}: say why each in `differ` may differ"


def test_every_recipe_is_in_the_groups_of_the_files_every_recipe_copies() -> None:
    """A new recipe joins the groups of its server configurations and README."""
    web = {path.parent.name for path in (ROOT / "recipes").glob("*/wsgi.py")}
    every = {path.parent.name for path in (ROOT / "recipes").glob("*/README.md")}
    assert web == set(WEB_RECIPES), f"web recipes: {sorted(web)}; set WEB_RECIPES (COPIES in {THIS_FILE}) to them"
    assert every == set(ALL_RECIPES), f"recipes: {sorted(every)}; set ALL_RECIPES (COPIES in {THIS_FILE}) to them"


@pytest.mark.parametrize("group", of_kind(SameFiles), ids=group_id)
def test_files_are_identical(group: SameFiles) -> None:
    assert not (
        message := failures(
            drift(
                f"The file {path}",
                {relative: read(relative) for relative in files_of(group.recipes, path)},
                WHAT_TO_DO_FOR_FILES,
            )
            for path in group.paths
        )
    ), f"{message}\n(Why alike: {group.why}.)"


@pytest.mark.parametrize("group", of_kind(SameDefinitions), ids=group_id)
def test_definitions_are_identical(group: SameDefinitions) -> None:
    files = files_of(group.recipes, group.path)
    assert not (
        message := failures(
            drift(f"`{name}` in {group.path}", {relative: definition(relative, name) for relative in files})
            for name in group.alike
        )
    ), f"{message}\n(Why alike: {group.why}.)"


@pytest.mark.parametrize("group", of_kind(SameDefinitions), ids=group_id)
def test_every_definition_the_files_share_is_alike_or_allowed_to_differ(group: SameDefinitions) -> None:
    files = files_of(group.recipes, group.path)
    shared = set.intersection(*(set(top_level_units(relative)) for relative in files))
    decided = {
        name if name.endswith("()") else name.removesuffix("[0]").split(".")[0]
        for other in of_kind(SameDefinitions)
        if other.path == group.path and set(other.recipes) >= set(group.recipes)
        for name in (*other.alike, *other.differ)
    }
    undecided = sorted(shared - decided)
    assert not undecided, (
        f"{', '.join(files)} all define {undecided}: add each to the group's `alike`, or to its `differ` with a"
        f" reason (COPIES in {THIS_FILE})."
    )
    unknown = sorted(name for name in group.differ if not any(name in top_level_units(file) for file in files))
    assert not unknown, f"{group.path}: `differ` names {unknown}, which no file defines any more; remove them."


@pytest.mark.parametrize("group", of_kind(SameIniValues), ids=group_id)
def test_ini_values_are_the_same(group: SameIniValues) -> None:
    files = files_of(group.recipes, group.path)
    values = {relative: ini_values(relative) for relative in files}
    assert not (
        message := failures(
            drift(f"`{key}` in {group.path}", {relative: values[relative].get(key) for relative in files})
            for key in group.alike
        )
    ), f"{message}\n(Why alike: {group.why}.)"
    undecided = {
        relative: stray
        for relative, keys in values.items()
        if (stray := sorted(set(keys) - {*group.alike, *group.differ}))
    }
    assert not undecided, (
        f"Keys in neither list: {undecided}. Add each to the group's `alike` (and to every {group.path}),"
        f" or to its `differ` with a reason (COPIES in {THIS_FILE})."
    )


def call_arguments(relative: str, name: str) -> dict[str, str]:
    """Each keyword argument of the one call to ``name`` in the file, as an expression."""
    calls = [node for node in ast.walk(parsed(relative)[0]) if isinstance(node, ast.Call) and callee(node.func) == name]
    assert len(calls) == 1, f"{relative}: {len(calls)} calls to {name}(), not one"
    return {keyword.arg: ast.unparse(keyword.value) + "\n" for keyword in calls[0].keywords if keyword.arg}


@pytest.mark.parametrize("group", of_kind(SameCallArguments), ids=group_id)
def test_call_arguments_are_the_same(group: SameCallArguments) -> None:
    files = files_of(group.recipes, group.path)
    arguments = {relative: call_arguments(relative, group.callee) for relative in files}
    assert not (
        message := failures(
            drift(
                f"`{keyword}=` of {group.callee}() in {group.path}",
                {relative: given.get(keyword) for relative, given in arguments.items()},
            )
            for keyword in group.alike
        )
    ), f"{message}\n(Why alike: {group.why}.)"
    undecided = {
        relative: stray
        for relative, given in arguments.items()
        if (stray := sorted(set(given) - {*group.alike, *group.differ}))
    }
    assert not undecided, (
        f"Arguments in neither list: {undecided}. Add each to the group's `alike` (and to every {group.path}),"
        f" or to its `differ` with a reason (COPIES in {THIS_FILE})."
    )


@pytest.mark.parametrize("recipe", WEB_RECIPES)
def test_uwsgi_and_gunicorn_serve_the_same_callable(recipe: str) -> None:
    """``module`` may differ between recipes, but within one it names what gunicorn's ``wsgi_app`` does."""
    module = ini_values(f"recipes/{recipe}/uwsgi.ini")["module"]
    wsgi_app = gunicorn_setting(f"recipes/{recipe}/gunicorn.conf.py", "wsgi_app")
    assert module == wsgi_app, (
        f"recipes/{recipe}: uwsgi.ini serves {module}, gunicorn.conf.py {wsgi_app}; make them one"
    )


@pytest.mark.parametrize("group", of_kind(SameDocumentedDefaults), ids=group_id)
def test_documented_defaults_are_the_same(group: SameDocumentedDefaults) -> None:
    files = files_of(group.recipes, group.path)
    defaults = {relative: documented_defaults(relative) for relative in files}
    variables = sorted({variable for table in defaults.values() for variable in table} - set(group.differ))
    assert len(variables) > 5, f"no knob tables found in {group.path} files"
    assert not (
        message := failures(
            drift(
                f"The default of `{variable}` in {group.path}",
                {relative: table[variable] + "\n" for relative, table in defaults.items() if variable in table},
                WHAT_TO_DO_FOR_DEFAULTS,
            )
            for variable in variables
        )
    ), f"{message}\n(Why alike: {group.why}.)"


#: The Celery settings the Django ORM recipe's project (Django settings, CELERY_*)
#: shares with the Celery recipe (app.conf.update keywords): the same worker
#: behaviour, for the same reasons, in the two forms Celery reads.
CELERY_SETTINGS_ALIKE = (
    "task_serializer",
    "result_serializer",
    "accept_content",
    "result_accept_content",
    "task_acks_late",
    "task_reject_on_worker_lost",
    "worker_prefetch_multiplier",
    "task_soft_time_limit",
    "task_time_limit",
    "result_expires",
    "broker_connection_retry_on_startup",
)


def test_the_django_projects_celery_settings_are_the_celery_recipes() -> None:
    recipe = call_arguments("recipes/celery/celery_app.py", "app.conf.update")
    settings = {
        target.id.removeprefix("CELERY_").lower(): ast.unparse(statement.value) + "\n"
        for statement in parsed("recipes/django-orm/config/settings.py")[0].body
        if isinstance(statement, ast.Assign)
        for target in statement.targets
        if isinstance(target, ast.Name) and target.id.startswith("CELERY_")
    }
    assert not (
        message := failures(
            drift(
                f"Celery's `{name}`",
                {
                    "recipes/celery/celery_app.py": recipe.get(name),
                    "recipes/django-orm/config/settings.py": settings.get(name),
                },
                f"Change both the same way, or take it out of CELERY_SETTINGS_ALIKE with a reason ({THIS_FILE}).",
            )
            for name in CELERY_SETTINGS_ALIKE
        )
    ), f"{message}\n(Why alike: the Django project's workers behave as the Celery recipe's, for the same reasons.)"
