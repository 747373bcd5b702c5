"""Where a worker's time goes: sampled profiles of one worker of each web recipe, and of its
baseline, under the benchmark's deposit and read loads.

py-spy attaches to the worker without pausing it (``--nonblocking``) and samples its
Python stacks. Two views of each load: **Python** (``--gil``: samples while a thread
holds the GIL, running Python code) and **wall** (``--idle``: all the time, waiting too,
for the database's answer, a lock or the next request). Under uWSGI a request runs on
the worker's main thread, and both views are of that thread. Under an ASGI server a
request's call runs in one of a pool's threads and the event loop on the main thread:
the Python view counts every thread (only one holds the GIL at a time), and there is no
wall view, which the pool's idle threads would fill. Each sample is given to the
component its innermost frame belongs to, by the path of the frame's file: that
frame's self time. The raw stacks go to ``artifacts/bench/profiles/``
(``frame;frame;... count`` lines, which speedscope and flamegraph.pl read).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import web
from harness import BenchError, Progress, Settings, open_accounts, run_wrk, serving, write_ids

#: The web recipes profiled, each under the server it is measured with first: the SQL recipes
#: on PostgreSQL, the Cassandra recipes on one Cassandra node (run.py's Cassandra part).
PROFILED = {
    "flask-sqlalchemy": "uwsgi",
    "plain-wsgi": "uwsgi",
    "pyramid-sqlalchemy": "uwsgi",
    "django-orm": "uwsgi",
    "fastapi": "uvicorn",
    "flask-cassandra": "uwsgi",
    "django-cassandra": "uwsgi",
}
MODES = {"python": ["--gil"], "wall": ["--idle"]}


def modes(server: str) -> list[str]:
    """The views of a worker of ``server``: both under uWSGI, Python's alone under an ASGI server."""
    return list(MODES) if server == "uwsgi" else ["python"]


#: Samples a second: enough for a share of a few per cent, little enough to cost the worker nothing noticeable.
RATE = 200
DRIVER = "database driver"
#: What each sample's innermost frame belongs to, by its file's path; the first match wins.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "event store (recorder)",
        (
            "/eventsourcing/postgres.py",
            "/eventsourcing/sqlite.py",
            "/eventsourcing_sqlalchemy/",
            "/eventsourcing_django/",
            "/eventsourcing_cassandra/",
        ),
    ),
    ("eventsourcing", ("/eventsourcing/",)),
    (DRIVER, ("/psycopg/", "/psycopg_pool/", "/sqlite3/", "/cassandra/")),
    (
        "ORM, SQL toolkit, transactions",
        ("/sqlalchemy/", "/django/db/", "/flask_sqlalchemy/", "/zope/", "/transaction/"),
    ),
    (
        "web framework and server",
        (
            "/flask/",
            "/werkzeug/",
            "/pyramid/",
            "/pyramid_tm/",
            "/pyramid_retry/",
            "/webob/",
            "/django/",
            "/fastapi/",
            "/starlette/",
            "/pydantic/",
            "/pydantic_core/",
            "/anyio/",
            "/uvicorn/",
            "/h11/",
            "/httptools/",
            "/asyncio/",
        ),
    ),
    ("JSON", ("/json/",)),
    # pyuwsgi runs uWSGI from its script: a worker in uWSGI's C code shows only that frame.
    ("the server (uWSGI's C code: between requests, reading and answering them)", ("/bin/uwsgi",)),
    ("the application (bankaccounts, the recipe, the baseline)", ("/bankaccounts/", "/recipes/", "/baselines/")),
)
OTHER = "other (standard library, C extensions)"


def component(frame: str) -> str:
    """``function (path:line)``: the component of ``path``."""
    path = frame.rpartition(" (")[2]
    for name, fragments in COMPONENTS:
        if any(fragment in path for fragment in fragments):
            return name
    return OTHER


#: Code whose waits in ``threading`` are waits for the database's answer: cassandra-driver's
#: ``Session.execute`` is compiled (Cython), so py-spy does not see it, and its wait on a
#: ``threading.Event`` (set by the driver's I/O thread) shows as called by whoever called
#: ``execute``: the Cassandra store, or a Cassandra baseline's view. (Nothing else on a
#: profiled worker's main thread waits in ``threading``: none of the PostgreSQL profiles do.)
WAITS_FOR_THE_DATABASE = ("/eventsourcing_cassandra/", "/baselines/flask-cassandra/", "/baselines/django-cassandra/")


def sample_component(stack: tuple[str, ...]) -> str:
    """The component of a sample: its innermost frame's, except that a wait in ``threading``
    for the database's answer is the driver's (``WAITS_FOR_THE_DATABASE``), as psycopg's
    wait in its own code is."""
    innermost = component(stack[-1])
    if innermost == OTHER and "/threading.py" in stack[-1]:
        callers = [frame for frame in stack if "/threading.py" not in frame]
        waiter = callers[-1] if callers else ""
        if component(waiter) == DRIVER or any(path in waiter for path in WAITS_FOR_THE_DATABASE):
            return DRIVER
    return innermost


def py_spy() -> str:
    found = shutil.which("py-spy")
    if found is None:
        msg = "py-spy is not installed (bench/requirements.txt has it)"
        raise BenchError(msg)
    return found


def read_stacks(path: Path, *, every_thread: bool = False) -> Counter[tuple[str, ...]]:
    """py-spy's raw output: each stack, outermost frame first, with its sample count. Only
    the main thread's, unless ``every_thread``: a thread started by ``threading`` (a pool's)
    has its bootstrap frame."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        stack = tuple(frames.split(";"))
        if not frames:
            continue
        if not every_thread and any("_bootstrap (" in frame and "/threading.py" in frame for frame in stack):
            continue
        stacks[stack] += int(count)
    return stacks


def summarise(stacks: Counter[tuple[str, ...]]) -> dict[str, Any]:
    """Each component's share of the samples (self time), and the five busiest functions."""
    total = sum(stacks.values())
    if total == 0:
        msg = "py-spy took no sample of the worker's thread(s)"
        raise BenchError(msg)
    components: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for stack, count in stacks.items():
        components[sample_component(stack)] += count
        functions[stack[-1]] += count
    return {
        "samples": total,
        "components": {name: count / total for name, count in components.most_common()},
        "top": [[frame, count / total] for frame, count in functions.most_common(5)],
    }


def profile_worker(pid: int, seconds: float, mode: str, output: Path) -> Path:
    """Sample ``pid`` for ``seconds`` (bounded: twice that, plus 30 s, for py-spy to finish)."""
    command = [py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    command += ["--rate", str(RATE), "--nonblocking", "--full-filenames", "--format", "raw", "--output", str(output)]
    command += MODES[mode]
    result = subprocess.run(command, capture_output=True, text=True, timeout=2 * seconds + 30, check=False)
    if result.returncode != 0 or not output.is_file():
        msg = f"py-spy on worker {pid} failed ({result.returncode}): {result.stderr[-1000:]}"
        raise BenchError(msg)
    return output


def measure(
    recipe: str,
    stores: tuple[Mapping[str, str], Mapping[str, str]],
    settings: Settings,
    progress: Progress,
    workdir: Path,
    output: Path,
    store_name: str = "postgresql",
) -> dict[str, Any]:
    """Both servers of ``recipe`` (recipe and baseline) under each load, one worker of each profiled."""
    server = PROFILED[recipe]
    pair = web.prepared_targets(recipe, server, stores, workdir)
    result: dict[str, Any] = {"recipe": recipe, "server": server, "store": store_name, "rate": RATE, "profiles": {}}
    output.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=1) as loader:
        for target, store in zip(pair, stores, strict=True):
            with serving(target, store, workers=settings.workers) as running:
                ids = {
                    "deposit": open_accounts(running.client, settings.write_accounts),
                    "read": open_accounts(running.client, settings.read_accounts, settings.read_account_events - 1),
                }
                for operation in web.OPERATIONS:
                    ids_file = write_ids(workdir / f"profile-{recipe}-{target.role}-{operation}.txt", ids[operation])
                    for mode in modes(server):
                        pid = min(running.worker_pids())
                        # The load runs a second longer than the sampling, which starts once it has begun.
                        load = loader.submit(
                            run_wrk,
                            running.port,
                            operation,
                            settings.duration + 1,
                            settings,
                            ids_file,
                            close_connections=web.connection_per_request(server),
                        )
                        raw = output / f"{recipe}-{target.role}-{operation}-{mode}.txt"
                        sampled = profile_worker(pid, settings.duration, mode, raw)
                        summary = summarise(read_stacks(sampled, every_thread=server != "uwsgi"))
                        load.result(timeout=settings.duration + 120)
                        result["profiles"][f"{target.role}/{operation}/{mode}"] = summary
                        top = max(summary["components"].items(), key=lambda item: item[1])
                        progress.step(
                            f"{recipe} {target.role}, {operation}, {mode}: {summary['samples']} samples; "
                            f"most in {top[0]} ({top[1]:.0%})"
                        )
    return result
