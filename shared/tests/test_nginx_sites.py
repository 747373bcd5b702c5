"""shared/deploy/nginx's site templates: rendered as envsubst would, accepted by nginx,
their limits the application's, and what a server behind each is told about the
client (the recipes' checks through a real nginx are ``cookbook_testing.proxy_checks``)."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bankaccounts.timeouts import server_timeout
from bankaccounts.web import MAX_BODY_BYTES
from cookbook_testing.nginx import Nginx, accepts, nginx_binary, render_site
from cookbook_testing.processes import wait_for
from cookbook_testing.proxy_checks import CLIENT_ADDRESS, FORGED_ADDRESS, TEMPLATES, request_from
from cookbook_testing.servers import free_port

SITES = Path(__file__).resolve().parents[1] / "deploy" / "nginx"
VALUES = {"BANK_LISTEN": "127.0.0.1:8080", "BANK_UPSTREAM": "127.0.0.1:8001"}

#: A WSGI application that answers with what its server passed on about the client.
ECHO_APP = """\
import json

SEEN = ("REMOTE_ADDR", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO")


def application(environ, start_response):
    body = json.dumps({name: environ.get(name) for name in SEEN}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""
#: Each site, and the server program (of this test environment) behind it, serving ``ECHO_APP``.
ECHO_SERVERS = {
    "uwsgi.conf.template": ["uwsgi", "--socket", "127.0.0.1:{port}", "--module", "echo:application", "--master"],
    "http.conf.template": ["gunicorn", "--bind", "127.0.0.1:{port}", "echo:application"],
}


@pytest.fixture(params=TEMPLATES)
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
    refused = re.search(r"return 400 '(.*)\\n';", site).group(1)  # type: ignore[union-attr]
    assert set(json.loads(refused)) == {"error"}  # nginx's own 400, in the application's shape
    waits = [int(seconds) for seconds in re.findall(r"_(?:read|send)_timeout (\d+)s;", site)]
    assert len(waits) == 2
    assert all(wait > server_timeout({}) for wait in waits), (waits, server_timeout({}))
    # Passed on to another host only where that is safe (checked below, through nginx).
    assert re.search(r"_next_upstream error timeout;", site)
    assert not re.search(r"^\s*\w+_next_upstream [^;]*non_idempotent", site, re.MULTILINE)


@pytest.mark.parametrize("template", TEMPLATES)
def test_nginx_accepts_the_rendered_site_and_serves(template: str) -> None:
    """nginx starts with it (``nginx -t`` first), and with no server behind it answers 502."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    with Nginx(SITES / template, "127.0.0.1:9") as nginx:  # the discard port: nobody listens
        assert nginx.client.get("/health").status == 502


@pytest.mark.parametrize("template", TEMPLATES)
def test_what_the_server_is_told_about_the_client_is_what_nginx_saw(template: str, tmp_path: Path) -> None:
    """The WSGI environ behind each site, from a server program serving an application
    that echoes it: the client's address, and nothing the client forged in X-Forwarded-*
    left. (Without the site's lines that set them, the forged values reach it.)"""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    (tmp_path / "echo.py").write_text(ECHO_APP)
    port = free_port()
    program, *args = ECHO_SERVERS[template]
    command = [str(Path(sys.executable).parent / program), *(arg.format(port=port) for arg in args)]
    with (tmp_path / "server.log").open("wb") as log:
        echo = subprocess.Popen(command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_for(lambda: accepts("127.0.0.1", port), 30, f"{program} with the echo application")
        with Nginx(SITES / template, f"127.0.0.1:{port}") as nginx:
            forged = {"X-Forwarded-For": FORGED_ADDRESS, "X-Forwarded-Proto": "https"}
            response = request_from(CLIENT_ADDRESS, nginx.port, "GET", "/", b"", forged)
    finally:
        echo.send_signal(signal.SIGINT)  # both stop at once on SIGINT
        echo.wait(30)
    assert response.status == 200, response
    told = response.json
    assert told["HTTP_X_FORWARDED_FOR"] == CLIENT_ADDRESS, told
    assert told["HTTP_X_FORWARDED_PROTO"] == "http", told  # nginx's scheme here: plain HTTP
    if program == "uwsgi":
        assert told["REMOTE_ADDR"] == CLIENT_ADDRESS, told  # over uWSGI's protocol, nginx's view


#: What a host behind nginx that answers sends: raw HTTP, which uWSGI's protocol answers in too.
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


class Host:
    """A host on its own loopback address that reads each request and answers it
    (``answers``) or closes the connection without a word; it counts what it read."""

    def __init__(self, address: str, *, answers: bool) -> None:
        self.answers = answers
        self.listener = socket.create_server((address, 0))
        self.upstream = f"{address}:{self.listener.getsockname()[1]}"
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            with connection:
                connection.settimeout(5)
                if connection.recv(65536):
                    self.requests += 1
                    if self.answers:
                        connection.sendall(ANSWER)
                        # Then read the rest until nginx closes: under uWSGI's protocol a POST's
                        # body comes after its first read, and a socket closed with data unread
                        # is reset, which nginx may see before the answer, and answers 502.
                        connection.shutdown(socket.SHUT_WR)
                        with contextlib.suppress(OSError):
                            while connection.recv(65536):
                                pass

    def close(self) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the accept; it fails once closed
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)


@contextmanager
def hosts(*answers: bool) -> Iterator[list[Host]]:
    started = [Host(f"127.0.0.{2 + index}", answers=answer) for index, answer in enumerate(answers)]
    try:
        yield started
    finally:
        for host in started:
            host.close()


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_post_handed_to_a_host_is_never_sent_to_another(template: str) -> None:
    """Two hosts that read a request and close without an answer: nginx answers a POST
    502 after one host has read it (a deposit is never sent twice), and sends a GET
    to the second host before it gives up."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    body = {"full_name": "Ada", "email_address": "ada@example.com"}
    with hosts(False, False) as silent, Nginx(SITES / template, [host.upstream for host in silent]) as nginx:
        assert nginx.client.post("/accounts", json=body).status == 502
        assert sum(host.requests for host in silent) == 1
    with hosts(False, False) as silent, Nginx(SITES / template, [host.upstream for host in silent]) as nginx:
        assert nginx.client.get("/health").status == 502
        assert [host.requests for host in silent] == [1, 1]


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_request_to_a_host_that_is_down_goes_to_another(template: str) -> None:
    """A host whose port is closed (its server stopped): nginx passes each request,
    POSTs too, to the host that is up, none of them having reached the first."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    with hosts(True, True) as (down, up), Nginx(SITES / template, [down.upstream, up.upstream]) as nginx:
        down.close()
        body = {"full_name": "Ada", "email_address": "ada@example.com"}
        statuses = [nginx.client.post("/accounts", json=body).status for _ in range(4)]
        assert statuses == [200] * 4
        assert (down.requests, up.requests) == (0, 4)
        passed_on = [line for line in nginx.access_log() if f'"{down.upstream}, {up.upstream}"' in line]
        assert passed_on, nginx.access_log()  # the first went to the host that is down, and on
