"""The projections recipe's process following a web recipe under load: the view's lag.

plain-wsgi, under its own ``uwsgi.ini`` (4 workers) on PostgreSQL, takes
deposits from wrk's 16 connections, into ``write_accounts`` accounts, for
``lag_seconds``; meanwhile ``python run_projection.py views`` (the
projections recipe, from its folder) follows the same database, by
LISTEN/NOTIFY. The lag of an event is from its creation in the web worker
(its timestamp, taken just before the commit) to the first moment the view's
tracking position covered it, sampled every 2 ms from here: percentiles over
every event written. It includes the commit, the notification, the view's
transaction, and up to one sampling interval.
"""

from __future__ import annotations

import bisect
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from harness import RECIPES, BenchError, Progress, Settings, open_accounts, run_wrk, serving, write_ids
from web import targets

from bankaccounts.application import construct_application
from bankaccounts.config import DatabaseConfig
from cookbook_testing.processes import ManagedProcess

#: The web recipe that writes: it stores its events with eventsourcing's own
#: PostgreSQL recorder, the one the projection follows.
WRITER = "plain-wsgi"
#: Logged by the projection's process once its runner is built and subscribed.
FOLLOWING = "views: following BankAccounts from position"
#: Seconds the view may take to cover the last event once the load has stopped.
CATCH_UP_SECONDS = 60.0
SAMPLING_SECONDS = 0.002


class PositionSampler:
    """In a thread: ``(position, when first seen)`` each time the view's position rises."""

    def __init__(self, database_url: str) -> None:
        self.samples: list[tuple[int, float]] = []
        self._connection = psycopg.connect(database_url, autocommit=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="view-position", daemon=True)

    def seen(self) -> int:
        """The highest position sampled so far."""
        return self.samples[-1][0] if self.samples else 0

    def position(self) -> int:
        row = self._connection.execute(
            "SELECT max(notification_id) FROM accountviews_tracking WHERE application_name = 'BankAccounts'"
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            seen, position = time.time(), self.position()
            if not self.samples or position > self.samples[-1][0]:
                self.samples.append((position, seen))
            self._stop.wait(SAMPLING_SECONDS)

    def __enter__(self) -> PositionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._connection.close()


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(database_url: str, settings: Settings, progress: Progress, workdir: Path) -> dict[str, Any]:
    target = targets(WRITER)[0]
    store = {"DATABASE_URL": database_url}
    with (
        construct_application(DatabaseConfig.from_url(database_url).eventsourcing_env()) as reader,
        serving(target, store, workers=settings.workers) as server,
    ):
        accounts = open_accounts(server.client, settings.write_accounts)
        ids_file = write_ids(workdir / f"projections-{WRITER}.txt", accounts)
        projection = ManagedProcess(
            "projection-views", "python", ["run_projection.py", "views"], RECIPES / "projections", store
        )
        try:
            projection.start(timeout=60, until=lambda: FOLLOWING in projection.log())
        except AssertionError as error:
            projection.kill()
            msg = f"the projection did not start: {error}\n{projection.log()[-3000:]}"
            raise BenchError(msg) from None
        try:
            with PositionSampler(database_url) as sampler:
                first = reader.recorder.max_notification_id() or 0
                load = run_wrk(server.port, "deposit", settings.lag_seconds, settings, ids_file)
                last = reader.recorder.max_notification_id() or 0
                deadline = time.monotonic() + CATCH_UP_SECONDS
                while sampler.seen() < last and time.monotonic() < deadline:
                    time.sleep(0.05)
            if sampler.seen() < last:
                msg = f"the view did not reach position {last} within {CATCH_UP_SECONDS:.0f} s of the load's end"
                raise BenchError(msg)
            projection.close()  # SIGTERM: it must stop cleanly, within the bound
        except BaseException:
            projection.kill()
            raise
        timed = created_times(reader, first, last)
    if load.errors:
        msg = f"{WRITER}: {load.errors} deposits failed while the projection followed"
        raise BenchError(msg)
    positions = [position for position, _ in sampler.samples]
    lags = []
    for notification_id, created in timed:
        covered = sampler.samples[bisect.bisect_left(positions, notification_id)][1]
        lags.append(covered - created)
    lags.sort()
    result = {
        "writer": WRITER,
        "server": "uwsgi",
        "workers": settings.workers,
        "store": "postgresql",
        "seconds": settings.lag_seconds,
        "events": len(lags),
        "deposits_rps": round(load.rps, 1),
        "lag_ms": {
            "p50": round(percentile(lags, 0.5) * 1000, 1),
            "p99": round(percentile(lags, 0.99) * 1000, 1),
            "max": round(lags[-1] * 1000, 1),
        },
    }
    progress.step(
        f"{WRITER} under uWSGI x{settings.workers} at {load.rps:,.0f} deposits/s, the view following: "
        f"{len(lags):,} events, lag p50 {result['lag_ms']['p50']:.0f} ms, p99 {result['lag_ms']['p99']:.0f} ms, "
        f"max {result['lag_ms']['max']:.0f} ms"
    )
    return result


def created_times(application: Any, first: int, last: int) -> list[tuple[int, float]]:
    """(notification id, the event's creation time) of every event after ``first`` up to ``last``."""
    found = []
    for notification in application.recorder.select_notifications(start=first + 1, limit=last - first, stop=last):
        event: Any = application.mapper.to_domain_event(notification)
        found.append((notification.id, event.timestamp.timestamp()))
    return found


__all__ = ["measure"]
