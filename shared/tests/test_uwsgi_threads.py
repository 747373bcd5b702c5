"""What ``enable-threads`` changes under the ``pyuwsgi`` wheel the recipes install: nothing.

uWSGI's documentation says that without it the Python plugin does not initialise
the GIL, so threads an application starts do not run. That is uWSGI built with
its Python plugin (``pip install uwsgi``, distribution packages). The ``pyuwsgi``
wheel turns Python's thread support on whatever the option says (it logs "python
threads support enabled" either way), and a thread started in a ``@postfork``
function runs while the worker waits for requests, with the option and without
it. The recipes set it anyway, for a uWSGI built the other way.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cookbook_testing.processes import wait_for
from cookbook_testing.servers import free_port

APP = """
import os, threading, time
from pathlib import Path
from uwsgidecorators import postfork

TICKS = Path(__file__).with_name("ticks")


def tick():
    count = 0
    while True:
        count += 1
        TICKS.with_suffix(".new").write_text(str(count))
        os.replace(TICKS.with_suffix(".new"), TICKS)  # whole counts only
        time.sleep(0.02)


@postfork
def start_ticking():
    threading.Thread(target=tick, daemon=True).start()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"up"]
"""
#: Seconds the worker waits for requests, with none coming, while the thread is watched.
IDLE_SECONDS = 1.0


def uwsgi_program() -> str:
    return str(Path(sys.executable).with_name("uwsgi"))


@pytest.mark.parametrize("enable_threads", [True, False], ids=["with-enable-threads", "without"])
def test_a_thread_started_after_the_fork_runs_while_the_worker_waits(tmp_path: Path, enable_threads: bool) -> None:
    (tmp_path / "app.py").write_text(APP)
    ticks = tmp_path / "ticks"
    port = free_port()
    args = [uwsgi_program(), "--master", "--workers", "1", "--http-socket", f"127.0.0.1:{port}"]
    args += ["--chdir", str(tmp_path), "--module", "app:application", "--need-app"]
    args += ["--enable-threads"] if enable_threads else []
    log = tmp_path / "uwsgi.log"
    with log.open("wb") as output:
        server = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(ticks.exists, 30, "the worker's thread to tick once")
        first = int(ticks.read_text())
        time.sleep(IDLE_SECONDS)  # the window measured, with no request: not a wait for readiness
        ticked = int(ticks.read_text()) - first
    finally:
        server.send_signal(signal.SIGINT)  # uWSGI's immediate stop (SIGTERM would reload it)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert "python threads support enabled" in log.read_text(), log.read_text()[-2000:]
    # 50 ticks a second when it runs freely; a thread that never ran would add none.
    assert ticked >= 10, (ticked, log.read_text()[-2000:])
