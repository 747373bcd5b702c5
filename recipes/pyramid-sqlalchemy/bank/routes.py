"""The URL of each route, and the methods its views answer."""

from __future__ import annotations

from collections.abc import Callable

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPMethodNotAllowed
from pyramid.request import Request

#: Route name, URL pattern, methods. The views (bank.views) say the same
#: methods in their ``request_method``; this table also feeds the ``Allow`` header.
ROUTES = (
    ("health", "/health", ("GET",)),
    ("ready", "/ready", ("GET",)),
    ("accounts", "/accounts", ("POST",)),
    ("account", "/accounts/{account_id}", ("GET",)),
    ("deposit", "/accounts/{account_id}/deposit", ("POST",)),
    ("withdraw", "/accounts/{account_id}/withdraw", ("POST",)),
    ("transfer", "/accounts/{account_id}/transfer", ("POST",)),
    ("overdraft_limit", "/accounts/{account_id}/overdraft-limit", ("POST",)),
    ("close", "/accounts/{account_id}/close", ("POST",)),
)


def method_not_allowed(methods: tuple[str, ...]) -> Callable[[Request], None]:
    """A view for any other method on a route: 405 with ``Allow``.

    Without it, Pyramid answers a known path with an unknown method 404.
    A view with a ``request_method`` predicate is tried before this one,
    which has none. Pyramid's ``GET`` views answer ``HEAD`` too.
    """
    allowed = sorted({*methods, "HEAD"} if "GET" in methods else set(methods))
    allow = ", ".join(allowed)

    def refuse(request: Request) -> None:
        raise HTTPMethodNotAllowed(f"{request.method} is not allowed here; use {allow}", headers={"Allow": allow})

    return refuse


def includeme(config: Configurator) -> None:
    for name, pattern, methods in ROUTES:
        config.add_route(name, pattern)
        config.add_view(method_not_allowed(methods), route_name=name)
