"""Stand-alone checks of a recipe's server behind a real nginx.

``BehindNginxChecks``: the recipe's server at full width, and nginx in front of
it with one of ``shared/deploy/nginx``'s site templates, rendered as a user
would: uWSGI over its own protocol (``uwsgi_pass`` to the socket
``UWSGI_SOCKET`` opens), gunicorn over HTTP (``proxy_pass``). Clients talk to
nginx only.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bankaccounts.web import MAX_BODY_BYTES
from cookbook_testing.contract import assert_error
from cookbook_testing.http import Response
from cookbook_testing.nginx import Nginx, accepts, nginx_binary
from cookbook_testing.processes import wait_for
from cookbook_testing.servers import RECIPE_WORKERS, ServerProcess, free_port
from cookbook_testing.standalone import DEPOSITS, DepositLoad, applications_by_pid, deposit_at_once_into_one_account

__all__ = ["BehindNginxChecks", "nginx_site"]

#: A WSGI application that answers with what its server passed on about the client.
ECHO_APP = """\
import json

SEEN = ("REMOTE_ADDR", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO")


def application(environ, start_response):
    body = json.dumps({name: environ.get(name) for name in SEEN}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
"""

#: The site template for each server, and how the server offers nginx its socket.
TEMPLATES = {"uwsgi": "uwsgi.conf.template", "gunicorn": "http.conf.template"}
#: A client's own loopback address, not nginx's (127.0.0.1): whose address the server sees.
CLIENT_ADDRESS = "127.0.0.2"


def nginx_site(recipe_dir: Path, server_kind: str) -> Path:
    """The site template for ``server_kind``, in the copy's (or the repository's) shared/."""
    return recipe_dir.parent.parent / "shared" / "deploy" / "nginx" / TEMPLATES[server_kind]


def request_from(address: str, port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> Response:
    """One request to nginx on 127.0.0.1, sent from ``address``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(address, 0))
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return Response(
            status=answer.status, body=answer.read(), headers={k.lower(): v for k, v in answer.getheaders()}
        )
    finally:
        connection.close()


def lines_logged(log: Callable[[], list[str]], marker: str, count: int, timeout: float = 10.0) -> list[str]:
    """The lines of ``log`` with ``marker`` once there are ``count`` of them. A server
    writes its access line after it has sent the answer, so a client that has its
    answer may read the log a moment before the line is there."""

    def lines() -> list[str]:
        return [line for line in log() if marker in line]

    wait_for(lambda: len(lines()) >= count, timeout, f"{count} lines with {marker!r} in the log")
    return lines()


class BehindNginxChecks:
    """Include in a WSGI recipe's ``test_servers.py``; uWSGI and gunicorn, each behind nginx."""

    @pytest.fixture(scope="class", params=sorted(TEMPLATES))
    @staticmethod
    def server_kind(request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def behind_nginx(
        self,
        server_kind: str,
        recipe_dir: Path,
        start_server: Callable[..., ServerProcess],
        class_store_env: dict[str, str],
    ) -> Iterator[tuple[ServerProcess, Nginx]]:
        """The recipe's server (4 workers) and nginx in front of it."""
        if nginx_binary() is None:
            pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
        env: dict[str, str] = {}
        if server_kind == "uwsgi":
            env["UWSGI_SOCKET"] = f"127.0.0.1:{free_port()}"
        server = start_server(store=class_store_env, env=env, workers=RECIPE_WORKERS)
        upstream = env.get("UWSGI_SOCKET", f"127.0.0.1:{server.port}")
        with Nginx(nginx_site(recipe_dir, server_kind), upstream) as nginx:
            yield server, nginx

    def test_concurrent_deposits_through_nginx(self, behind_nginx: tuple[ServerProcess, Nginx]) -> None:
        """The contention check (every deposit applied once, all 200), through nginx."""
        server, nginx = behind_nginx
        deposit_at_once_into_one_account(server, client=nginx.client)
        answered = lines_logged(nginx.access_log, "/deposit", DEPOSITS)
        assert len(answered) == DEPOSITS, len(answered)  # each request reached the server once, through nginx

    def test_the_server_logs_the_client_s_address_not_nginx_s(self, behind_nginx: tuple[ServerProcess, Nginx]) -> None:
        """uWSGI gets the client's address from nginx (``uwsgi_params``' REMOTE_ADDR) and logs
        it; gunicorn, over HTTP, sees nginx's and gets the client's in ``X-Forwarded-For``,
        which nginx sets, replacing what the client claimed."""
        server, nginx = behind_nginx
        body = json.dumps({"full_name": "Ada", "email_address": "ada@example.com"}).encode()
        claimed = {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"}
        response = request_from(CLIENT_ADDRESS, nginx.port, "POST", "/accounts", body, claimed)
        assert response.status == 201, response
        seen_by_nginx = lines_logged(nginx.access_log, "POST /accounts", 1)
        assert seen_by_nginx == [f'{CLIENT_ADDRESS} "203.0.113.9" "POST /accounts HTTP/1.1" 201'], seen_by_nginx
        logged = lines_logged(lambda: server.log().splitlines(), "POST /accounts", 1)
        assert len(logged) == 1, logged
        if server.kind == "uwsgi":
            assert f"] {CLIENT_ADDRESS} " in logged[0], logged
        else:
            assert logged[0].endswith(f"forwarded-for={CLIENT_ADDRESS}"), logged
        assert "203.0.113.9" not in server.log()

    def test_what_the_application_is_told_about_the_client_is_what_nginx_saw(
        self, server_kind: str, recipe_dir: Path, tmp_path: Path
    ) -> None:
        """The WSGI environ behind each site file, through the same server program with an
        application that echoes it: the client's address, and no forged X-Forwarded-* left."""
        if nginx_binary() is None:
            pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
        (tmp_path / "echo.py").write_text(ECHO_APP)
        port = free_port()
        program = Path(sys.executable).parent / server_kind
        command = {
            "uwsgi": [str(program), "--socket", f"127.0.0.1:{port}", "--module", "echo:application", "--master"],
            "gunicorn": [str(program), "--bind", f"127.0.0.1:{port}", "echo:application"],
        }[server_kind]
        with (tmp_path / "server.log").open("wb") as log:
            echo = subprocess.Popen(command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            wait_for(lambda: accepts("127.0.0.1", port), 30, f"{server_kind} with the echo application")
            with Nginx(nginx_site(recipe_dir, server_kind), f"127.0.0.1:{port}") as nginx:
                forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
                response = request_from(CLIENT_ADDRESS, nginx.port, "GET", "/", b"", forged)
        finally:
            echo.send_signal(signal.SIGINT)  # both stop at once on SIGINT
            echo.wait(30)
        assert response.status == 200, response
        told = response.json
        assert told["HTTP_X_FORWARDED_FOR"] == CLIENT_ADDRESS, told
        assert told["HTTP_X_FORWARDED_PROTO"] == "http", told  # nginx's scheme here: plain HTTP
        if server_kind == "uwsgi":
            assert told["REMOTE_ADDR"] == CLIENT_ADDRESS, told  # over uWSGI's protocol, nginx's view

    def test_a_body_over_the_limit_is_refused_by_nginx_with_a_json_error(
        self, behind_nginx: tuple[ServerProcess, Nginx]
    ) -> None:
        """nginx answers 413 with the application's kind of error, and the server never sees it."""
        server, nginx = behind_nginx
        body = b'{"full_name": "' + b"A" * MAX_BODY_BYTES + b'", "email_address": "ada@example.com"}'
        response = request_from(
            "127.0.0.1", nginx.port, "POST", "/accounts", body, {"Content-Type": "application/json"}
        )
        assert_error(response, 413)
        assert "POST /accounts" not in server.log()

    def test_a_graceful_reload_behind_nginx_loses_no_request(self, behind_nginx: tuple[ServerProcess, Nginx]) -> None:
        """Deposits through nginx while the server reloads (uWSGI: SIGHUP; gunicorn: HUP):
        every client's every request answered, and each deposit applied once."""
        server, nginx = behind_nginx
        before = applications_by_pid(server)
        load = DepositLoad(server, client=nginx.client)

        def reload() -> dict[int, set[str]]:
            server.reload()
            return applications_by_pid(server)

        after = load.around(reload, "the reload")
        failed = [outcome for outcome in load.outcomes if outcome != 200]
        print(f"{server.kind} behind nginx, reloaded: {len(failed)} of {len(load.outcomes)} requests not 200: {failed}")
        # uWSGI ends a worker that takes the reload's signal just after it accepted a
        # connection and before it reads the request (docs/topics/servers.rst): nginx
        # then has no answer for it, and says 502; the client sends it again.
        tolerated = {502} if server.kind == "uwsgi" else set()
        assert [outcome for outcome in failed if outcome not in tolerated] == []
        assert not set(after) & set(before), "the old workers are still serving"
        load.assert_every_deposit_applied_once()

    def test_a_worker_killed_behind_nginx_costs_at_most_the_request_it_held(
        self, behind_nginx: tuple[ServerProcess, Nginx]
    ) -> None:
        """SIGKILL one worker under load through nginx: a sync worker holds one request at a
        time, so at most one 502, which its client sends again; each deposit applied once."""
        server, nginx = behind_nginx
        load = DepositLoad(server, client=nginx.client)

        def kill_a_worker() -> None:
            before = server.worker_pids()
            server.signal_worker(min(before), signal.SIGKILL)
            wait_for(lambda: len(server.worker_pids() - before) == 1, server.replacement_bound, "a new worker")

        load.around(kill_a_worker, "the kill")
        failed = [outcome for outcome in load.outcomes if outcome != 200]
        print(f"{server.kind} behind nginx, a worker killed: {len(failed)} of {len(load.outcomes)} not 200: {failed}")
        assert set(failed) <= {502} and len(failed) <= 1, failed
        load.assert_every_deposit_applied_once()
