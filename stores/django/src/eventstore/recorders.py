"""``eventsourcing``'s recorder interfaces on Django's ORM, through Django's connection.

Every write runs in ``transaction.atomic()`` on Django's connection for the
current thread. Outside a transaction that is a transaction of its own; inside
one (a view's, a test's) it is a savepoint, so the events commit or roll back
with everything else the caller wrote, and a failed insert leaves the caller's
transaction usable.

Notification ids are issued in commit order, so a reader following the log
never passes a position that a slower transaction fills in later:

- PostgreSQL hands out ``id`` values when rows are inserted, not when they
  commit, so two concurrent transactions could commit their ids out of
  order. Each transaction that inserts events therefore first takes an
  ``EXCLUSIVE`` lock on the events table, held until it commits or rolls
  back. That mode blocks other writers of the table, never its readers.
- SQLite lets one transaction write at a time, from its first write to its
  commit, so ids are already issued in commit order.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db import utils as django_errors
from django.db.models import Max, Model
from eventsourcing import persistence
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from eventstore.models import StoredEventRecord, TrackingRecord

#: Django's database errors, most specific first, with ``eventsourcing``'s
#: equivalents (applications catch those, e.g. ``IntegrityError`` on a conflict).
TRANSLATED_ERRORS: list[tuple[type[Exception], type[persistence.PersistenceError]]] = [
    (django_errors.IntegrityError, persistence.IntegrityError),
    (django_errors.DataError, persistence.DataError),
    (django_errors.OperationalError, persistence.OperationalError),
    (django_errors.ProgrammingError, persistence.ProgrammingError),
    (django_errors.NotSupportedError, persistence.NotSupportedError),
    (django_errors.InternalError, persistence.InternalError),
    (django_errors.InterfaceError, persistence.InterfaceError),
    (django_errors.DatabaseError, persistence.DatabaseError),
]


@contextlib.contextmanager
def eventsourcing_errors() -> Iterator[None]:
    """Re-raise Django's database errors as ``eventsourcing.persistence`` errors."""
    try:
        yield
    except django_errors.Error as error:
        for django_class, eventsourcing_class in TRANSLATED_ERRORS:
            if isinstance(error, django_class):
                raise eventsourcing_class(str(error)) from error
        raise persistence.PersistenceError(str(error)) from error


def as_uuid(originator_id: UUID | str) -> UUID:
    if isinstance(originator_id, UUID):
        return originator_id
    try:
        return UUID(originator_id)
    except (TypeError, ValueError):
        msg = f"this event store records aggregates with UUID ids only, not {originator_id!r}"
        raise persistence.DataError(msg) from None


class DjangoRecorder:
    """Which application's records, in which of Django's databases."""

    def __init__(self, application_name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
        self.application_name = application_name
        self.using = using


class DjangoAggregateRecorder(DjangoRecorder, AggregateRecorder):
    """Events (or snapshots: pass ``model=SnapshotRecord``) of aggregates."""

    def __init__(
        self,
        application_name: str,
        *,
        model: type[Model] = StoredEventRecord,
        using: str = DEFAULT_DB_ALIAS,
    ) -> None:
        super().__init__(application_name, using=using)
        self.model = model

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with eventsourcing_errors(), transaction.atomic(using=self.using):
            self._insert_events(stored_events, **kwargs)
        return None

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        """Insert the rows and return their ids; called inside ``atomic()``."""
        if not stored_events:
            return []
        if self.model is StoredEventRecord:
            self._lock_events_table()
        records = [
            self.model(
                application_name=self.application_name,
                originator_id=as_uuid(event.originator_id),
                originator_version=event.originator_version,
                topic=event.topic,
                state=event.state,
            )
            for event in stored_events
        ]
        # One INSERT ... RETURNING (in batches if SQLite needs them); ids come back in order.
        self.model._default_manager.using(self.using).bulk_create(records)
        return [record.pk for record in records]

    def _lock_events_table(self) -> None:
        """PostgreSQL: serialise inserting transactions until they end (see the module's docstring)."""
        connection = connections[self.using]
        if connection.vendor == "postgresql":
            table = connection.ops.quote_name(StoredEventRecord._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        rows = self.model._default_manager.using(self.using).filter(
            application_name=self.application_name, originator_id=as_uuid(originator_id)
        )
        if gt is not None:
            rows = rows.filter(originator_version__gt=gt)
        if lte is not None:
            rows = rows.filter(originator_version__lte=lte)
        rows = rows.order_by("-originator_version" if desc else "originator_version")
        if limit is not None:
            rows = rows[:limit]
        with eventsourcing_errors():
            return [
                StoredEvent(originator_id=row_id, originator_version=version, topic=topic, state=bytes(state))
                for row_id, version, topic, state in rows.values_list(
                    "originator_id", "originator_version", "topic", "state"
                )
            ]


class DjangoApplicationRecorder(DjangoAggregateRecorder, ApplicationRecorder):
    """Events of aggregates, and the application's notification log over them."""

    def __init__(self, application_name: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
        super().__init__(application_name, model=StoredEventRecord, using=using)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with eventsourcing_errors(), transaction.atomic(using=self.using):
            return self._insert_events(stored_events, **kwargs)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        rows = StoredEventRecord.objects.using(self.using).filter(application_name=self.application_name)
        if start is not None:
            rows = rows.filter(id__gte=start) if inclusive_of_start else rows.filter(id__gt=start)
        if stop is not None:
            rows = rows.filter(id__lte=stop)
        if topics:
            rows = rows.filter(topic__in=list(topics))
        rows = rows.order_by("id")[:limit]
        with eventsourcing_errors():
            return [
                Notification(
                    id=notification_id,
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
                for notification_id, originator_id, version, topic, state in rows.values_list(
                    "id", "originator_id", "originator_version", "topic", "state"
                )
            ]

    def max_notification_id(self) -> int | None:
        rows = StoredEventRecord.objects.using(self.using).filter(application_name=self.application_name)
        with eventsourcing_errors():
            return rows.aggregate(max_id=Max("id"))["max_id"]

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(self, gt=gt, topics=topics)


class PollingSubscription(Subscription[DjangoApplicationRecorder]):
    """Follows the notification log by asking for newer notifications every ``poll_interval`` seconds.

    It polls from the thread that iterates over it, on that thread's Django
    connection, so it starts no thread and opens no connection of its own.
    Iterate outside a transaction: inside one, a reader may keep seeing the
    snapshot the transaction started with.
    """

    poll_interval = 0.1
    batch_size = 500

    def __init__(self, recorder: DjangoApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        super().__init__(recorder, gt=gt, topics=topics)
        self._received: deque[Notification] = deque()
        self._wake_up = threading.Event()

    def stop(self) -> None:
        super().stop()
        self._wake_up.set()

    def __next__(self) -> Notification:
        while not self._has_been_stopped:
            if self._received:
                notification = self._received.popleft()
                self._last_notification_id = notification.id
                return notification
            self._received.extend(
                self._recorder.select_notifications(
                    start=self._last_notification_id or 0,
                    limit=self.batch_size,
                    topics=self._topics,
                    inclusive_of_start=False,
                )
            )
            if not self._received:
                self._wake_up.wait(self.poll_interval)
        raise StopIteration


class DjangoTrackingRecorder(DjangoRecorder, TrackingRecorder):
    """How far this application has processed each upstream application's log."""

    def insert_tracking(self, tracking: Tracking) -> None:
        with eventsourcing_errors(), transaction.atomic(using=self.using):
            self._insert_tracking(tracking)

    def _insert_tracking(self, tracking: Tracking) -> None:
        """Move the position forward, or raise ``IntegrityError``; called inside ``atomic()``."""
        position = TrackingRecord.objects.using(self.using).filter(
            application_name=self.application_name, upstream_application_name=tracking.application_name
        )
        if position.filter(notification_id__lt=tracking.notification_id).update(
            notification_id=tracking.notification_id
        ):
            return
        if position.exists():
            msg = (
                f"{self.application_name} has already processed notification {tracking.notification_id} "
                f"of {tracking.application_name}, or a later one"
            )
            raise persistence.IntegrityError(msg)
        # The first position for this upstream application. Should another
        # transaction create it at the same moment, the unique constraint
        # refuses one of the two with IntegrityError.
        TrackingRecord.objects.using(self.using).create(
            application_name=self.application_name,
            upstream_application_name=tracking.application_name,
            notification_id=tracking.notification_id,
        )

    def max_tracking_id(self, application_name: str) -> int | None:
        position = TrackingRecord.objects.using(self.using).filter(
            application_name=self.application_name, upstream_application_name=application_name
        )
        with eventsourcing_errors():
            return position.values_list("notification_id", flat=True).first()


class DjangoProcessRecorder(DjangoTrackingRecorder, DjangoApplicationRecorder, ProcessRecorder):
    """Events and the tracking position they were caused by, recorded in one transaction."""

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(tracking)
        return super()._insert_events(stored_events, **kwargs)
