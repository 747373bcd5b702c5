"""Flask + Flask-SQLAlchemy + eventsourcing-sqlalchemy: the application factory."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from eventsourcing.persistence import PersistenceError
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from bank.accounts import EVENTSOURCING_ENV
from bank.db import db
from bank.views import api, domain_error, host_check, http_error, unavailable_store
from bankaccounts.application import construct_application
from bankaccounts.config import DatabaseConfig
from bankaccounts.hosts import allowed_hosts
from bankaccounts.request_body import read_whole_body
from bankaccounts.web import ANSWERED_ERRORS, MAX_BODY_BYTES

logger = logging.getLogger(__name__)


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app. Cheap and connection-free when it returns, so it is
    safe to call in a prefork server's master before the workers fork."""
    app = Flask(__name__)
    database = DatabaseConfig.from_env()
    database.make_sqlite_folder()
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database.sqlalchemy_url(),
        # Test connections before use: a database restart must not fail requests.
        # Bounded waits: for a connection, a statement, a lock (bankaccounts/timeouts.py).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": database.connect_args()},
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        # OPTIONS is 405 here, as in every recipe: the API serves no CORS preflight.
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.config.update(settings or {})
    db.init_app(app)

    @app.teardown_appcontext
    def remove_session(error: BaseException | None) -> None:
        """End the request's session before Flask-SQLAlchemy's own teardown does.

        That teardown rolls back, and when the database has gone away meanwhile
        the rollback raises from the teardown itself, after the 503 was
        decided: the client got the server's HTML 500 instead. Flask runs the
        last-registered teardown first, so this one removes the session, and
        drops it if even that fails (its broken connection is discarded).
        """
        try:
            db.session.remove()
        except SQLAlchemyError as failure:
            logger.warning("could not end the request's session cleanly: %s", failure)
            db.session.registry.clear()

    app.before_request(host_check(allowed_hosts()))
    # Each body read whole and checked first (bankaccounts/request_body.py): a chunked
    # body under uWSGI, or a malformed or short one, is answered there.
    app.wsgi_app = read_whole_body(app.wsgi_app)  # type: ignore[method-assign,assignment]  # the WSGI-middleware idiom
    app.register_blueprint(api)
    for answered in ANSWERED_ERRORS:
        app.register_error_handler(answered, domain_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unavailable_store)
    with app.app_context():
        # Behind PgBouncer (PGBOUNCER_POOL_MODE), the session limits a connection cannot
        # carry as startup options: set, or checked to be the role's, on each new one.
        database.set_up_sqlalchemy_connections(db.engine)
        create_schema()
        # Connections opened here must not be inherited by forked workers.
        db.engine.dispose()
    return app


def create_schema(attempts: int = 3) -> None:
    """Create the ORM tables and the event store's tables, if they are missing.

    Servers here import the app once, in the master, so this runs once. If
    several processes start at the same moment (uWSGI lazy-apps, gunicorn
    without preload), two may race to create a table: the loser sees an
    error, looks again, and finds the table there.
    """
    for attempt in range(1, attempts + 1):
        try:
            db.create_all()
            # Constructing an application with CREATE_TABLE on creates the
            # event store's tables through the same engine; it is then closed.
            with construct_application(env={**EVENTSOURCING_ENV, "CREATE_TABLE": "y"}, retry=None):
                db.session.commit()
            return
        except (SQLAlchemyError, PersistenceError):
            db.session.rollback()
            if attempt == attempts:
                raise
            time.sleep(0.1 * attempt)
        finally:
            db.session.remove()
