"""The README's serve command, run as written: it installs, serves, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_list_names_the_recipes() -> None:
    result = subprocess.run(
        [sys.executable, "cookbook.py", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "flask-sqlalchemy" in result.stdout.split()


def test_unknown_recipe_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "cookbook.py", "serve", "no-such-recipe"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "no web recipe 'no-such-recipe'" in result.stderr


def test_serve_installs_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "COOKBOOK_VENVS": str(tmp_path / "venvs"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "WEB_CONCURRENCY": "2",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "cookbook.py", "serve", "flask-sqlalchemy", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 600
        while "cookbook: serving" not in log.read_text():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert f"http://127.0.0.1:{port}" in log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            health = json.load(response)
        assert health["status"] == "ok"
        assert health["store"] == "sqlite"
        process.send_signal(signal.SIGINT)  # what Ctrl+C does
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
