"""Creating the tables, once, when the WSGI app has been made.

uWSGI and gunicorn (with ``preload_app``) make the app once, in the master
process, before they fork the workers; so this runs once per deployment, and
then gives back every connection it opened, because a forked worker must not
inherit them. For a schema that changes over time, replace this with
migrations (Alembic, as the starter project does) run before the servers start.
"""

from __future__ import annotations

import logging
import time

from pyramid.config import Configurator
from pyramid.events import ApplicationCreated
from pyramid.registry import Registry
from pyramid.scripting import prepare
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bank.eventstore import EVENTSOURCING_ENV
from bank.models.meta import Base
from bankaccounts.application import create_schema as create_event_tables

logger = logging.getLogger(__name__)


def create_orm_tables(engine: Engine | Connection, attempts: int = 3) -> None:
    """The ORM's tables, if missing. If several processes start at the same
    moment (uWSGI ``lazy-apps``, gunicorn without ``preload_app``), two may
    race to create one table: the loser sees an error, looks again, and finds
    the table there."""
    for attempt in range(1, attempts + 1):
        try:
            Base.metadata.create_all(bind=engine)
            return
        except SQLAlchemyError:
            if attempt == attempts:
                raise
            logger.info("creating the ORM tables failed (attempt %d of %d); trying again", attempt, attempts)
            time.sleep(0.1 * attempt)


def create_schema(registry: Registry) -> None:
    """Create the ORM tables and the event store's tables, if they are missing."""
    # A request of our own, as in a Pyramid script: the event store finds its
    # session (and, through it, the engine) by the current request.
    with prepare(registry=registry) as env:
        engine = env["request"].dbsession.get_bind()
        try:
            create_orm_tables(engine)
            # A short-lived application with CREATE_TABLE on, closed at once.
            create_event_tables(env=EVENTSOURCING_ENV)
        finally:
            if isinstance(engine, Engine):
                engine.dispose()


def on_application_created(event: ApplicationCreated) -> None:
    create_schema(event.app.registry)


def includeme(config: Configurator) -> None:
    config.add_subscriber(on_application_created, ApplicationCreated)
