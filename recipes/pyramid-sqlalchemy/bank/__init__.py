"""Pyramid + pyramid_tm + zope.sqlalchemy + eventsourcing-sqlalchemy: the app factory."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.router import Router


def main(global_config: dict[str, Any], **settings: Any) -> Router:
    """The WSGI app that ``production.ini`` and ``development.ini`` name (``use = call:bank:main``)."""
    with Configurator(settings=settings) as config:
        config.include("bank")
    return config.make_wsgi_app()


def includeme(config: Configurator) -> None:
    """Everything the app is made of; a test may include it and add views of its own."""
    config.include(".models")  # pyramid_tm, request.tm, request.dbsession
    config.include(".eventstore")  # request.bank, on request.dbsession
    config.include(".conflicts")  # pyramid_retry for write conflicts
    config.include(".schema")  # tables created when the app is made
    config.include(".hosts")  # ALLOWED_HOSTS
    config.include(".routes")
    config.scan(".views")
