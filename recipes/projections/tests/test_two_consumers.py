"""Why one active process per view: what a second active consumer of the same projection does.

Both processes follow the same events from the same position and each applies
each event in a transaction that also moves the view's tracking position. For
every event, whichever commits second finds the position already past it:
eventsourcing's tracking recorder refuses (``IntegrityError``), its transaction
rolls back, and that process exits 1. The view stays right; the pair does not
share the work, and one of them is lost at the first event they both see.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from event_log import await_position, check_view_is_the_fold, last_position
from projection_process import ProjectionProcess

from account_views import AccountViewsRecorder
from bankaccounts.application import BankAccounts
from cookbook_testing.processes import wait_for

Start = Callable[..., ProjectionProcess]


@pytest.mark.logs_errors("the second consumer of an event fails on purpose, with a traceback")
def test_a_second_active_consumer_fails_at_the_first_event_both_see(
    application: BankAccounts, view: AccountViewsRecorder, start_projection: Start
) -> None:
    # Without the standby lock (standby_lock.py): both active.
    pair = [start_projection(extra_env={"PROJECTION_LOCK": "off"}) for _ in range(2)]
    account = application.open_account("Ada Lovelace", "ada@example.com")

    exited = wait_for(lambda: [p for p in pair if p.returncode is not None], 30, "one of the two to exit")
    assert [process.returncode for process in exited] == [1]
    assert "Failed to record tracking for BankAccounts 1" in exited[0].log()
    (survivor,) = [process for process in pair if process not in exited]

    # The one left goes on alone, and the view holds every event once.
    for amount in (100, 200, 300):
        application.deposit(account.id, amount)
    await_position(view, last_position(application), timeout=10)
    check_view_is_the_fold(application, view)
    assert survivor.returncode is None
