"""The persistence module an application names to store its events with Django.

Set ``PERSISTENCE_MODULE=eventstore.factory`` in the application's
environment; ``eventsourcing`` finds ``DjangoFactory`` here. Django must be set
up first (``django.setup()``, which ``manage.py`` and ``wsgi.py`` do), and the
tables must exist (``python manage.py migrate``): this factory never creates
tables, so ``CREATE_TABLE`` is ignored.

Settings, from the application's environment:

- ``DJANGO_DB_ALIAS``: which of Django's ``DATABASES`` to use (default ``default``);
- ``APPLICATION_RECORDER_TOPIC``, ``TRACKING_RECORDER_TOPIC``,
  ``PROCESS_RECORDER_TOPIC``: subclasses of this module's recorders to use instead.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.connection import ConnectionDoesNotExist
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    InfrastructureFactoryError,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from bankaccounts.aggregate_locks import ADVISORY_XACT_LOCK_SQL, TransactionAdvisoryLocks
from eventstore.models import SnapshotRecord, StoredEventRecord
from eventstore.recorders import (
    DjangoAggregateRecorder,
    DjangoApplicationRecorder,
    DjangoProcessRecorder,
    DjangoTrackingRecorder,
)

R = TypeVar("R")

#: Databases whose writers this store serialises correctly (see ``eventstore.recorders``).
SUPPORTED_VENDORS = ("sqlite", "postgresql")


class DjangoFactory(InfrastructureFactory[DjangoTrackingRecorder]):
    """Recorders on one of Django's databases, for the application named by the environment."""

    DJANGO_DB_ALIAS = "DJANGO_DB_ALIAS"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.using = self.env.get(self.DJANGO_DB_ALIAS) or DEFAULT_DB_ALIAS
        # Records of several applications share the tables; the name keeps them apart.
        self.application_name = self.env.name or "Application"
        try:
            connection = connections[self.using]  # a wrapper: no database connection is opened here
        except ConnectionDoesNotExist:
            msg = f"{self.DJANGO_DB_ALIAS}={self.using!r} is not one of Django's DATABASES"
            raise InfrastructureFactoryError(msg) from None
        if connection.vendor not in SUPPORTED_VENDORS:
            msg = f"the Django event store supports {' and '.join(SUPPORTED_VENDORS)}, not {connection.vendor}"
            raise InfrastructureFactoryError(msg)
        if not connection.features.can_return_rows_from_bulk_insert:
            msg = "the Django event store needs INSERT ... RETURNING (SQLite 3.35 or newer)"
            raise InfrastructureFactoryError(msg)

    @property
    def vendor(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(connections[self.using].vendor)

    @property
    def store_name(self) -> str:
        """The kind of database the events go to, as ``/health`` reports it: Django's vendor."""
        return self.vendor

    def aggregate_locks(self) -> TransactionAdvisoryLocks | None:
        """On PostgreSQL, writers of one account take turns (see ``bankaccounts.aggregate_locks``).

        The lock is taken in the caller's transaction (``bank.transactions``)
        and held until it commits or rolls back. SQLite has no lock per account.
        """
        if self.vendor != "postgresql":
            return None

        def lock_key(key: int) -> None:
            with connections[self.using].cursor() as cursor:
                cursor.execute(ADVISORY_XACT_LOCK_SQL, [key])

        return TransactionAdvisoryLocks(lock_key)

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        models = {"events": StoredEventRecord, "snapshots": SnapshotRecord}
        if purpose not in models:
            msg = f"no table for {purpose!r} records; expected one of {sorted(models)}"
            raise InfrastructureFactoryError(msg)
        return DjangoAggregateRecorder(self.application_name, model=models[purpose], using=self.using)

    def application_recorder(self) -> ApplicationRecorder:
        recorder_class = self._recorder_class(self.APPLICATION_RECORDER_TOPIC, DjangoApplicationRecorder)
        return recorder_class(self.application_name, using=self.using)

    def tracking_recorder(
        self, tracking_recorder_class: type[DjangoTrackingRecorder] | None = None
    ) -> DjangoTrackingRecorder:
        if tracking_recorder_class is None:
            tracking_recorder_class = self._recorder_class(self.TRACKING_RECORDER_TOPIC, DjangoTrackingRecorder)
        return tracking_recorder_class(self.application_name, using=self.using)

    def process_recorder(self) -> ProcessRecorder:
        recorder_class = self._recorder_class(self.PROCESS_RECORDER_TOPIC, DjangoProcessRecorder)
        return recorder_class(self.application_name, using=self.using)

    def _recorder_class(self, setting: str, default: type[R]) -> type[R]:
        topic = self.env.get(setting)
        if not topic:
            return default
        recorder_class: Any = resolve_topic(topic)
        if not (isinstance(recorder_class, type) and issubclass(recorder_class, default)):
            msg = f"{setting}={topic!r} must name a subclass of {default.__qualname__}"
            raise InfrastructureFactoryError(msg)
        return recorder_class

    def close(self) -> None:
        """Nothing to close: the connections are Django's, and Django closes them
        (at the end of each request, or when they reach ``CONN_MAX_AGE``)."""
