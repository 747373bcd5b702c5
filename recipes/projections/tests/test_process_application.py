"""The event-sourced process application, ``python run_projection.py alerts``: one alert per
large withdrawal, across kills, with its own events and position."""

from __future__ import annotations

import signal
from collections.abc import Callable

from event_log import LARGE_WITHDRAWAL, EventStream, await_position, large_withdrawals, last_position, position
from projection_process import ProjectionProcess

from bankaccounts.application import BankAccounts
from cookbook_testing.processes import STOP_BOUND_SECONDS
from large_withdrawals import Alert, LargeWithdrawals

Start = Callable[..., ProjectionProcess]


def test_one_alert_per_large_withdrawal_across_sigkills(
    application: BankAccounts, alerts: LargeWithdrawals, start_projection: Start
) -> None:
    with EventStream(deposits=4, large_every=3) as stream:
        kills = []
        for _ in range(2):
            process = start_projection(which="alerts")
            await_position(alerts.recorder, position(alerts.recorder) + 150)
            assert stream.is_alive(), "the stream ended before the kill"
            assert process.stop(signal.SIGKILL) == -signal.SIGKILL
            kills.append((position(alerts.recorder), len(alerts.alert_ids())))
        stream.stop()

    process = start_projection(which="alerts")
    await_position(alerts.recorder, last_position(application))
    expected = {Alert.create_id(account_id, version) for account_id, version in large_withdrawals(application)}
    raised = alerts.alert_ids()
    # Every large withdrawal has its alert, and only one: none lost to a kill, none raised twice.
    assert len(raised) == len(set(raised)) == len(expected) == -(-stream.batches // 3)
    assert set(raised) == expected
    assert {alerts.alert(alert_id).amount for alert_id in raised} == {LARGE_WITHDRAWAL}
    print(f"\n{len(raised)} alerts from {stream.batches} batches; SIGKILL at (position, alerts): {kills}")

    assert process.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS) == 0
