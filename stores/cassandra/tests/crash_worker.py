"""Run one transfer in a process of its own, and kill that process at a chosen point.

Usage: python crash_worker.py ENV_JSON FROM_ID TO_ID AMOUNT COMMAND_ID POINT

The process sends itself SIGKILL when the write reaches POINT (one of
``eventsourcing_cassandra.recorders.FAULT_POINTS``): no clean-up code runs,
exactly as if the machine had lost power there.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from uuid import UUID

from bankaccounts.application import BankAccounts
from eventsourcing_cassandra.recorders import CassandraApplicationRecorder


def main() -> None:
    env_json, from_id, to_id, amount, command_id, point = sys.argv[1:]
    app = BankAccounts(env=json.loads(env_json), retry=None)

    def die(reached: str, txid: UUID) -> None:
        if reached == point:
            os.kill(os.getpid(), signal.SIGKILL)

    recorder = app.recorder
    assert isinstance(recorder, CassandraApplicationRecorder)
    recorder.faults = die
    app.transfer(UUID(from_id), UUID(to_id), int(amount), command_id=command_id)
    print("transfer finished without reaching", point)


if __name__ == "__main__":
    main()
