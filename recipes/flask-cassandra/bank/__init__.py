"""Flask + eventsourcing on Cassandra: the application factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException

from bank.views import api, domain_error, host_check, http_error, unavailable_store
from bankaccounts.hosts import allowed_hosts
from bankaccounts.request_body import read_whole_body
from bankaccounts.web import ANSWERED_ERRORS, MAX_BODY_BYTES


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app: routes and JSON errors, and nothing else.

    It opens no connection: the master process of a prefork server calls it
    before the workers fork, and each worker connects to Cassandra on its own
    (see ``bank.accounts.start_worker``). ``DEBUG`` stays off: the debugger
    runs arbitrary code for whoever can reach it.
    """
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, PROVIDE_AUTOMATIC_OPTIONS=False)  # OPTIONS: 405, as everywhere
    app.config.update(settings or {})
    app.before_request(host_check(allowed_hosts()))
    # Each body read whole and checked first (bankaccounts/request_body.py): a chunked
    # body under uWSGI, or a malformed or short one, is answered there.
    app.wsgi_app = read_whole_body(app.wsgi_app)  # type: ignore[method-assign,assignment]  # the WSGI-middleware idiom
    app.register_blueprint(api)
    for answered in ANSWERED_ERRORS:
        app.register_error_handler(answered, domain_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unavailable_store)
    return app
