"""bankaccounts.uwsgi_signals: in uWSGI's master, SIGTERM and SIGHUP reach the master loop
as its fifo commands, and never its signal handlers.

Each test runs in a process of its own, standing in for uWSGI's master: a ``uwsgi``
module with the master's pid and the ``master-fifo`` option, and the fifo, read the
way the master reads it (non-blocking, one command at a time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MASTER = """
import json, os, select, signal, sys, time, types
path = {path!r}
sys.modules["uwsgi"] = types.SimpleNamespace(opt={{"master-fifo": path.encode()}}, masterpid=os.getpid)

def read_commands(count):
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # as the master opens it
    commands = b""
    deadline = time.monotonic() + 10
    while len(commands) < count and time.monotonic() < deadline:
        if select.select([reader], [], [], 0.1)[0]:
            commands += os.read(reader, 1)
    return commands.decode()

{before}
import bankaccounts.uwsgi_signals
{after}
"""


def run_master(tmp_path: Path, before: str = "", after: str = "") -> dict[str, object]:
    path = str(tmp_path / "master.fifo")
    code = MASTER.format(path=path, before=before, after=after)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout), fifo_left=os.path.exists(path))


def test_sigterm_and_sighup_reach_the_master_loop_as_a_graceful_stop_and_reload(tmp_path: Path) -> None:
    seen = run_master(
        tmp_path,
        before="os.mkfifo(path)",
        after="""
os.kill(os.getpid(), signal.SIGTERM)
os.kill(os.getpid(), signal.SIGHUP)
main_holds = sorted(map(int, signal.pthread_sigmask(signal.SIG_BLOCK, [])))
print(json.dumps({"commands": "".join(sorted(read_commands(2))), "main_holds": main_holds}))
""",
    )
    assert seen == {"commands": "qr", "main_holds": [1, 15], "fifo_left": False}  # both pending: either order


def test_a_stop_that_comes_before_the_fifo_exists_waits_for_it(tmp_path: Path) -> None:
    """uWSGI makes the fifo as its loop starts, after it has forked the workers."""
    seen = run_master(
        tmp_path,
        after="""
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.2)  # the master still starting: no fifo yet
os.mkfifo(path)
print(json.dumps({"commands": read_commands(1)}))
""",
    )
    assert seen == {"commands": "q", "fifo_left": False}


def test_a_child_the_master_forks_starts_with_both_held(tmp_path: Path) -> None:
    """Until its ``hook-accepting`` releases them: a worker's handlers exist only then."""
    seen = run_master(
        tmp_path,
        before="os.mkfifo(path)",
        after="""
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(writer, json.dumps(sorted(map(int, signal.pthread_sigmask(signal.SIG_BLOCK, [])))).encode())
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"child_holds": json.loads(os.read(reader, 1000))}))
""",
    )
    assert seen["child_holds"] == [1, 15]


def test_without_a_master_fifo_the_master_refuses_to_start(tmp_path: Path) -> None:
    """Held for good with nothing to take them, a stop would never be acted on."""
    code = (
        "import os, sys, types\n"
        "sys.modules['uwsgi'] = types.SimpleNamespace(opt={}, masterpid=os.getpid)\n"
        "import bankaccounts.uwsgi_signals\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "uwsgi.ini must set master-fifo" in result.stderr


def test_in_a_worker_it_takes_nothing(tmp_path: Path) -> None:
    """A process that is not the master (the module imported again there) holds nothing."""
    code = (
        "import os, signal, sys, types\n"
        "sys.modules['uwsgi'] = types.SimpleNamespace(opt={}, masterpid=lambda: os.getpid() + 1)\n"
        "import bankaccounts.uwsgi_signals, threading\n"
        "print(sorted(map(int, signal.pthread_sigmask(signal.SIG_BLOCK, []))), threading.active_count())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["[]", "1"]
