"""Which ``Host`` a recipe answers for: ``ALLOWED_HOSTS``, one knob for every recipe.

A request naming another host is refused with 400 before it reaches a view:
a service that answers any ``Host`` lets an attacker's domain point at it,
and builds links and redirects from a name the attacker chose (DNS rebinding,
cache poisoning). Django has this check built in (its ``ALLOWED_HOSTS``
setting); the other recipes call ``host_is_allowed`` with the same knob, the
same default and the same matching, so a deployment sets one variable
whichever recipe it runs.

``ALLOWED_HOSTS`` is a comma-separated list: ``bank.example.com`` matches that
name only, ``.example.com`` the domain and every subdomain, ``*`` any host.
Ports are ignored; names are compared without case.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

ALLOWED_HOSTS_ENV = "ALLOWED_HOSTS"
#: The loopback names: what a recipe started on its default address is called.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]")
#: The error of the 400 that answers a request for another host.
UNKNOWN_HOST_MESSAGE = "the Host header names no host this service answers for (ALLOWED_HOSTS)"
#: A host name, an IPv4 address, or a bracketed IPv6 address, with an optional
#: port (Django's own pattern): anything else names no host.
_HOST = re.compile(r"^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$")


def allowed_hosts(env: Mapping[str, str] = os.environ) -> list[str]:
    """``ALLOWED_HOSTS`` from the environment; unset or blank: the loopback names."""
    names = [name.strip() for name in env.get(ALLOWED_HOSTS_ENV, "").split(",") if name.strip()]
    return names or list(DEFAULT_ALLOWED_HOSTS)


def host_is_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request's ``Host`` header (None: absent) names an allowed host."""
    match = _HOST.match((host or "").lower())
    if match is None:
        return False
    name = match.group(1).removesuffix(".")
    for pattern in (pattern.lower() for pattern in allowed):
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


def wsgi_host(environ: Mapping[str, Any]) -> str:
    """The host a WSGI request names, as Django reads it: its ``Host`` header, or, in a
    request without one (HTTP/1.0), the server's own name."""
    if "HTTP_HOST" in environ:
        return str(environ["HTTP_HOST"])
    return str(environ.get("SERVER_NAME", ""))
