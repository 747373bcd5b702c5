"""shared/deploy/nginx's site templates: rendered as envsubst would, accepted by nginx,
and their limits the application's (the checks through a real nginx are the web
recipes' ``BehindNginxChecks``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bankaccounts.timeouts import server_timeout
from bankaccounts.web import MAX_BODY_BYTES
from cookbook_testing.nginx import Nginx, nginx_binary, render_site
from cookbook_testing.proxy_checks import TEMPLATES

SITES = Path(__file__).resolve().parents[1] / "deploy" / "nginx"
VALUES = {"BANK_LISTEN": "127.0.0.1:8080", "BANK_UPSTREAM": "127.0.0.1:8001"}


@pytest.fixture(params=sorted(TEMPLATES.values()))
def site(request: pytest.FixtureRequest) -> str:
    return (SITES / request.param).read_text()


def test_rendering_fills_in_the_two_variables_and_leaves_nginx_s_own(site: str) -> None:
    rendered = render_site(site, VALUES)
    assert "${" not in rendered.replace("envsubst '${BANK_LISTEN} ${BANK_UPSTREAM}'", "")
    assert "listen 127.0.0.1:8080;" in rendered
    assert "server 127.0.0.1:8001;" in rendered
    assert "$remote_addr" in rendered


def test_the_site_s_limits_are_the_application_s(site: str) -> None:
    """Bodies: nginx refuses what the application would (and answers as it would, in JSON).
    Time: nginx waits longer than the server's own limit, so the application's 503 comes back."""
    assert re.search(r"client_max_body_size (\d+)k;", site).group(1) == str(MAX_BODY_BYTES // 1024)  # type: ignore[union-attr]
    answer = re.search(r"return 413 '(.*)\\n';", site).group(1)  # type: ignore[union-attr]
    assert json.loads(answer) == {"error": f"the request body is larger than {MAX_BODY_BYTES} bytes"}
    waits = [int(seconds) for seconds in re.findall(r"_(?:read|send)_timeout (\d+)s;", site)]
    assert len(waits) == 2
    assert all(wait > server_timeout({}) for wait in waits), (waits, server_timeout({}))
    assert re.search(r"_next_upstream off;", site)  # a request is never sent to the server twice


@pytest.mark.parametrize("template", sorted(TEMPLATES.values()))
def test_nginx_accepts_the_rendered_site_and_serves(template: str) -> None:
    """nginx starts with it (``nginx -t`` first), and with no server behind it answers 502."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    with Nginx(SITES / template, "127.0.0.1:9") as nginx:  # the discard port: nobody listens
        assert nginx.client.get("/health").status == 502
