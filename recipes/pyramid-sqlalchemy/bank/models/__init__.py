"""The database: an engine, a session factory, and one session per request.

Laid out as in the Pylons starter project (pyramid-cookiecutter-starter, the
SQLAlchemy backend): ``request.dbsession`` is created on first use, joined to
the request's transaction manager (``request.tm``, from ``pyramid_tm``) by
``zope.sqlalchemy``, and committed or aborted by ``pyramid_tm`` when the
request ends. Views never commit. The event store writes through this same
session (see ``bank.eventstore``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.request import Request
from sqlalchemy import engine_from_config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, configure_mappers, sessionmaker
from transaction import TransactionManager

from bank.models.audit import AuditEntry
from bankaccounts.config import DatabaseConfig

# Import every model here, so that configure_mappers() below sees them all.
__all__ = ["AuditEntry", "get_engine", "get_session_factory", "get_tm_session"]

# Fail at start-up, not on the first request, if a relationship is misdeclared.
configure_mappers()


def get_engine(settings: Mapping[str, Any], prefix: str = "sqlalchemy.") -> Engine:
    """The engine for ``DATABASE_URL``, with options from ``sqlalchemy.*`` settings.

    The URL comes from the environment only, like every recipe in the cookbook,
    so that no password is ever written into an ``.ini`` file.
    """
    if f"{prefix}url" in settings:
        msg = f"remove {prefix}url from the settings: the database is named by the DATABASE_URL environment variable"
        raise ConfigurationError(msg)
    database = DatabaseConfig.from_env()
    database.make_sqlite_folder()
    # Bounded waits: for a connection, a statement, a lock (bankaccounts/timeouts.py).
    engine = engine_from_config(
        dict(settings), prefix, url=database.sqlalchemy_url(), connect_args=database.connect_args()
    )
    # Behind PgBouncer (PGBOUNCER_POOL_MODE), the session limits a connection cannot
    # carry as startup options: set, or checked to be the role's, on each new one.
    database.set_up_sqlalchemy_connections(engine)
    return engine


def get_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine)


def get_tm_session(
    session_factory: sessionmaker[Session], transaction_manager: TransactionManager, request: Request | None = None
) -> Session:
    """A new session whose transaction is the ``transaction_manager``'s.

    Committing or aborting ``transaction_manager`` commits or rolls back the
    session; nothing else should. Outside a web request (a script, a test)::

        with transaction.manager:
            dbsession = get_tm_session(session_factory, transaction.manager)
    """
    dbsession = session_factory(info={"request": request})
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


def includeme(config: Configurator) -> None:
    """``config.include("bank.models")``: ``pyramid_tm`` and ``request.dbsession``.

    A ``dbengine`` setting (an ``Engine`` or ``Connection``) replaces the engine
    from ``DATABASE_URL``: tests use it, as in the starter project.
    """
    settings = config.get_settings()
    # A transaction manager per request, in explicit mode: touching the
    # database outside pyramid_tm's transaction is an error, not a silent
    # implicit transaction that nobody commits.
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    config.include("pyramid_tm")

    dbengine = settings.get("dbengine") or get_engine(settings)
    session_factory = get_session_factory(dbengine)
    config.registry["dbsession_factory"] = session_factory

    def dbsession(request: Request) -> Session:
        # A test may share one session (and transaction) across its requests.
        session = request.environ.get("app.dbsession")
        if session is None:
            session = get_tm_session(session_factory, request.tm, request=request)
        return session

    config.add_request_method(dbsession, reify=True)
