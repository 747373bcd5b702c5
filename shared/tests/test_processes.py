"""The test kit's process handling: a process that will not stop is reported, then killed."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from cookbook_testing.processes import ManagedProcess

# A parent that ignores SIGTERM and holds SIGHUP, with a child, both waiting.
STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
os.kill(os.getpid(), signal.SIGHUP)  # held: pending for as long as it runs
if os.fork() == 0:
    time.sleep(60)
print("ready", flush=True)
time.sleep(60)
"""


class Stubborn(ManagedProcess):
    def __init__(self, tmp_path: Path) -> None:
        script = tmp_path / "stubborn.py"
        script.write_text(STUBBORN)
        super().__init__("stubborn", Path(sys.executable).name, [str(script)], tmp_path, {})

    def is_ready(self) -> bool:
        return "ready" in self.log()


def test_a_process_that_does_not_stop_is_described_then_killed(tmp_path: Path) -> None:
    process = Stubborn(tmp_path).start(timeout=30)
    with pytest.raises(AssertionError) as failure:
        process.stop(signal.SIGTERM, timeout=0.5)
    report = str(failure.value)
    assert "stubborn did not exit within 0.5s of signal 15" in report
    lines = [line for line in report.splitlines() if line.startswith("  pid ")]
    assert len(lines) == 2, report  # the parent and its child
    parent = next(line for line in lines if f"pid {process.pid} " in line)
    assert "SigBlk=0000000000000001" in parent  # SIGHUP held ...
    assert "ShdPnd=0000000000000001" in parent or "SigPnd=0000000000000001" in parent  # ... and pending
    # Killed, with its child (which init reaps in its own time).
    process.wait_until_gone(10, "its child")
