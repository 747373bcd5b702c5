"""ALLOWED_HOSTS: a request for a host not named there is 400 (bankaccounts/hosts.py says why)."""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.events import NewRequest
from pyramid.httpexceptions import HTTPBadRequest

from bankaccounts.hosts import UNKNOWN_HOST_MESSAGE, allowed_hosts, host_is_allowed, wsgi_host


def includeme(config: Configurator) -> None:
    allowed = allowed_hosts()

    def check_host(event: NewRequest) -> None:
        # NewRequest comes before routing, inside the exception-view tween: an unknown
        # path for another host is 400 too, and answered as JSON by bank.views.errors.
        if not host_is_allowed(wsgi_host(event.request.environ), allowed):
            raise HTTPBadRequest(UNKNOWN_HOST_MESSAGE)

    config.add_subscriber(check_host, NewRequest)
