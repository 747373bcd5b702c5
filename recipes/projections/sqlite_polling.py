"""A subscription for eventsourcing's SQLite store, which has none: it polls.

eventsourcing 9.5's ``SQLiteApplicationRecorder.subscribe()`` raises
``NotImplementedError`` (SQLite has no LISTEN/NOTIFY). This recorder subscribes
with eventsourcing's own ``ListenNotifySubscription`` (the one PostgreSQL's is
built on), woken by a clock instead of a notification: every
``POLL_INTERVAL_SECONDS`` it selects the notifications after the last one it
saw (at most 500 at a time, as on PostgreSQL). A new event is seen within one
interval; an idle follower costs one indexed query per interval. SQLite
serialises writers, so notification ids commit in order and polling misses none.

Selected by ``APPLICATION_RECORDER_TOPIC`` (``run_projection.projection_env``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, ListenNotifySubscription, Subscription
from eventsourcing.sqlite import SQLiteApplicationRecorder

#: How often an idle follower looks for new events: its longest added lag.
POLL_INTERVAL_SECONDS = 0.1


class PollingSubscription(ListenNotifySubscription[SQLiteApplicationRecorder]):
    def __init__(self, recorder: SQLiteApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        self._stopping = threading.Event()  # before the base starts its thread, which may stop()
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._clock = threading.Thread(target=self._tick, name="sqlite-poll", daemon=True)
        self._clock.start()

    def _tick(self) -> None:
        # Waits on an event stop() sets, so that it ends at once, not an interval later.
        while not self._stopping.is_set():
            self._has_been_notified.set()
            self._stopping.wait(POLL_INTERVAL_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._clock.join()


class PollingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(recorder=self, gt=gt, topics=topics)
