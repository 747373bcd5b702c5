"""The event store's tables, as Django models, so that ``migrate`` creates them.

One table of events serves every event-sourced application in the project:
``application_name`` keeps their sequences apart. The events table's
auto-incremented ``id`` is the event's position in its application's
notification log; ``eventstore.recorders`` makes sure those ids are issued
in commit order.
"""

from __future__ import annotations

from django.db import models


class StoredEventRecord(models.Model):
    """One recorded domain event; ``id`` is its notification id."""

    id = models.BigAutoField(primary_key=True)
    application_name = models.CharField(max_length=100)
    originator_id = models.UUIDField()
    originator_version = models.BigIntegerField()
    topic = models.TextField()
    state = models.BinaryField()

    class Meta:
        db_table = "eventstore_events"
        constraints = [
            # Optimistic concurrency: two writers cannot both record version n of one aggregate.
            models.UniqueConstraint(
                fields=["application_name", "originator_id", "originator_version"],
                name="eventstore_events_version_unique",
            ),
        ]
        indexes = [
            # Reading an application's notification log in order.
            models.Index(fields=["application_name", "id"], name="eventstore_events_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.application_name} {self.originator_id} v{self.originator_version}"


class SnapshotRecord(models.Model):
    """A snapshot of an aggregate; snapshots have no place in the notification log."""

    application_name = models.CharField(max_length=100)
    originator_id = models.UUIDField()
    originator_version = models.BigIntegerField()
    topic = models.TextField()
    state = models.BinaryField()

    class Meta:
        db_table = "eventstore_snapshots"
        constraints = [
            models.UniqueConstraint(
                fields=["application_name", "originator_id", "originator_version"],
                name="eventstore_snapshots_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_name} {self.originator_id} v{self.originator_version} snapshot"


class TrackingRecord(models.Model):
    """How far an application has processed another application's notification log.

    One row per (application, upstream application), moved forward only.
    """

    application_name = models.CharField(max_length=100)
    upstream_application_name = models.CharField(max_length=100)
    notification_id = models.BigIntegerField()

    class Meta:
        db_table = "eventstore_tracking"
        constraints = [
            models.UniqueConstraint(
                fields=["application_name", "upstream_application_name"],
                name="eventstore_tracking_position_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_name} processed {self.upstream_application_name} to {self.notification_id}"
