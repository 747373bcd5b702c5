"""Stand-alone checks of a recipe's servers behind a real nginx.

nginx runs in front of the recipe's server with one of ``shared/deploy/nginx``'s
site templates, rendered as a user would: uWSGI over its own protocol
(``uwsgi_pass`` to the socket ``UWSGI_SOCKET`` opens), every other server over
HTTP (``proxy_pass``). Clients talk to nginx only.

``ContractThroughNginx``: the HTTP contract, through nginx. ``BehindNginxChecks``:
contention, the client's address, nginx's body limit, a graceful reload and a
killed worker, at full width. ``HttpsBehindNginxChecks``: nginx taking HTTPS in
front of a recipe that redirects plain HTTP there (the Django recipes).
"""

from __future__ import annotations

import http.client
import json
import signal
import ssl
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from bankaccounts.web import MAX_BODY_BYTES
from cookbook_testing.contract import HttpContract, assert_error
from cookbook_testing.http import Client, Response
from cookbook_testing.nginx import Nginx, nginx_binary, self_signed_certificate
from cookbook_testing.processes import wait_for
from cookbook_testing.servers import ServerProcess, free_port
from cookbook_testing.standalone import DEPOSITS, DepositLoad, applications_by_pid, deposit_at_once_into_one_account

__all__ = ["BehindNginxChecks", "ContractThroughNginx", "HttpsBehindNginxChecks", "nginx_site"]

#: The site template for uWSGI (its own protocol); every other server speaks HTTP to nginx.
UWSGI_TEMPLATE = "uwsgi.conf.template"
HTTP_TEMPLATE = "http.conf.template"
TEMPLATES = (UWSGI_TEMPLATE, HTTP_TEMPLATE)
#: A client's own loopback address, not nginx's (127.0.0.1): whose address the server sees.
CLIENT_ADDRESS = "127.0.0.2"
#: What a client claims in X-Forwarded-For, which nginx must replace.
FORGED_ADDRESS = "203.0.113.9"


def nginx_site(recipe_dir: Path, server_kind: str) -> Path:
    """The site template for ``server_kind``, in the copy's (or the repository's) shared/."""
    template = UWSGI_TEMPLATE if server_kind == "uwsgi" else HTTP_TEMPLATE
    return recipe_dir.parent.parent / "shared" / "deploy" / "nginx" / template


def uwsgi_socket_env(server_kind: str, host: str = "127.0.0.1") -> dict[str, str]:
    """For uWSGI, the socket of its own protocol that nginx passes requests to (``UWSGI_SOCKET``)."""
    return {"UWSGI_SOCKET": f"{host}:{free_port(host)}"} if server_kind == "uwsgi" else {}


def upstream(server: ServerProcess) -> str:
    """Where nginx passes the server's requests: uWSGI's own socket, or its HTTP port."""
    return server.env.get("UWSGI_SOCKET") or f"{server.host}:{server.port}"


def require_nginx() -> None:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")


def request_from(
    address: str,
    port: int,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    certificate: Path | None = None,
) -> Response:
    """One request to nginx on 127.0.0.1, sent from ``address``; over HTTPS if nginx's
    ``certificate`` is given (the one trusted)."""
    connection = (
        http.client.HTTPSConnection(
            "127.0.0.1",
            port,
            timeout=30,
            source_address=(address, 0),
            context=ssl.create_default_context(cafile=certificate),
        )
        if certificate is not None
        else http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(address, 0))
    )
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return Response(
            status=answer.status, body=answer.read(), headers={k.lower(): v for k, v in answer.getheaders()}
        )
    finally:
        connection.close()


def lost_with_its_server(outcome: int | str) -> bool:
    """What a request held by a server that died ends in, through nginx: nginx's 502, or,
    if nginx had begun to pass the answer on, an answer cut off (the client's error, as
    ``DepositLoad`` records it). Either way its client sends it again with its key."""
    return outcome == 502 or isinstance(outcome, str)


def lines_logged(log: Callable[[], list[str]], marker: str, count: int, timeout: float = 10.0) -> list[str]:
    """The lines of ``log`` with ``marker`` once there are ``count`` of them. A server
    writes its access line after it has sent the answer, so a client that has its
    answer may read the log a moment before the line is there."""

    def lines() -> list[str]:
        return [line for line in log() if marker in line]

    wait_for(lambda: len(lines()) >= count, timeout, f"{count} lines with {marker!r} in the log")
    return lines()


@pytest.mark.topology
class ContractThroughNginx(HttpContract):
    """The HTTP contract through nginx, in front of each of the recipe's servers."""

    nul_in_path_status = 400  # nginx refuses it, before any server sees it

    @pytest.fixture(scope="class")
    @staticmethod
    def class_server_env(server_kind: str) -> dict[str, str]:
        return uwsgi_socket_env(server_kind)

    @pytest.fixture(scope="class")
    @staticmethod
    def nginx(server: ServerProcess, recipe_dir: Path) -> Iterator[Nginx]:
        require_nginx()
        with Nginx(nginx_site(recipe_dir, server.kind), upstream(server)) as nginx:
            yield nginx

    @pytest.fixture
    @staticmethod
    def api(nginx: Nginx) -> Client:
        return nginx.client

    @pytest.fixture
    @staticmethod
    def count_events(
        server: ServerProcess, count_store_events: Callable[[Mapping[str, str]], int]
    ) -> Callable[[], int]:
        return lambda: count_store_events(server.env)


@pytest.mark.topology
class BehindNginxChecks:
    """Include in a web recipe's ``test_servers.py``: each of its servers behind nginx."""

    #: The servers whose workers, as a graceful reload stops them, may close a connection
    #: nginx has just passed a request on (``StandaloneChecks.reload_closes_connections_under_requests``):
    #: nginx answers that request 502, and the client sends it again with its key.
    reload_may_cost_a_502: frozenset[str] = frozenset({"uwsgi"})
    #: The servers whose worker serves several requests at once (an event loop): a
    #: killed one costs each request it held, up to one per client of the load.
    workers_serve_many_at_once: frozenset[str] = frozenset()

    @pytest.fixture(scope="class")
    @staticmethod
    def class_server_env(server_kind: str) -> dict[str, str]:
        return uwsgi_socket_env(server_kind)

    @pytest.fixture
    @staticmethod
    def behind_nginx(server: ServerProcess, recipe_dir: Path) -> Iterator[tuple[ServerProcess, Nginx]]:
        """The recipe's server (4 workers, one for the class: these checks leave it
        serving) and a new nginx in front of it."""
        require_nginx()
        with Nginx(nginx_site(recipe_dir, server.kind), upstream(server)) as nginx:
            yield server, nginx

    def test_concurrent_deposits_through_nginx(self, behind_nginx: tuple[ServerProcess, Nginx]) -> None:
        """The contention check (every deposit applied once, all 200), through nginx."""
        server, nginx = behind_nginx
        deposit_at_once_into_one_account(server, client=nginx.client)
        answered = lines_logged(nginx.access_log, "/deposit", DEPOSITS)
        assert len(answered) == DEPOSITS, len(answered)  # each request reached the server once, through nginx

    def test_the_server_logs_the_client_s_address_not_nginx_s(self, behind_nginx: tuple[ServerProcess, Nginx]) -> None:
        """The request line the server logs names the client, not nginx: uWSGI gets its
        address from nginx (``uwsgi_params``' REMOTE_ADDR); gunicorn's WSGI workers log
        the X-Forwarded-For nginx sets (``access_log_format``); uvicorn and Granian take
        it from there when told to trust nginx (``FORWARDED_ALLOW_IPS``). What the client
        claimed is replaced, and appears nowhere."""
        server, nginx = behind_nginx
        body = json.dumps({"full_name": "Ada", "email_address": "ada@example.com"}).encode()
        claimed = {"Content-Type": "application/json", "X-Forwarded-For": FORGED_ADDRESS}

        def server_lines() -> list[str]:
            # Whole lines only: a server may write a line in pieces (Granian did), and a
            # read between them saw it cut before its forwarded-for field.
            log = server.log()
            return log[: log.rfind("\n") + 1].splitlines()

        earlier = len(lines_logged(server_lines, "POST /accounts", 0))  # the class's server has served before
        response = request_from(CLIENT_ADDRESS, nginx.port, "POST", "/accounts", body, claimed)
        assert response.status == 201, response
        seen_by_nginx = lines_logged(nginx.access_log, "POST /accounts", 1)
        passed_to = upstream(server)
        assert seen_by_nginx == [f'{CLIENT_ADDRESS} "{FORGED_ADDRESS}" "POST /accounts HTTP/1.1" "{passed_to}" 201'], (
            seen_by_nginx
        )
        logged = lines_logged(server_lines, "POST /accounts", earlier + 1)[earlier:]
        assert len(logged) == 1, logged
        assert CLIENT_ADDRESS in logged[0], logged
        assert FORGED_ADDRESS not in server.log()

    def test_a_body_over_the_limit_is_refused_by_nginx_with_a_json_error(
        self, behind_nginx: tuple[ServerProcess, Nginx]
    ) -> None:
        """nginx answers 413 with the application's kind of error, and the server never sees it."""
        server, nginx = behind_nginx
        served = server.log().count("POST /accounts")
        body = b'{"full_name": "' + b"A" * MAX_BODY_BYTES + b'", "email_address": "ada@example.com"}'
        response = request_from(
            "127.0.0.1", nginx.port, "POST", "/accounts", body, {"Content-Type": "application/json"}
        )
        assert_error(response, 413)
        assert lines_logged(nginx.access_log, "POST /accounts", 1)[0].endswith(" 413")
        assert server.log().count("POST /accounts") == served

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
        tolerated = {502} if server.kind in self.reload_may_cost_a_502 else set()
        assert [outcome for outcome in failed if outcome not in tolerated] == []
        assert not set(after) & set(before), "the old workers are still serving"
        load.assert_every_deposit_applied_once()

    def test_a_worker_killed_behind_nginx_costs_at_most_the_request_it_held(
        self, behind_nginx: tuple[ServerProcess, Nginx]
    ) -> None:
        """SIGKILL one worker under load through nginx: the requests it held are answered
        502 (or cut off, ``lost_with_its_server``), and their clients send them again; each
        deposit applied once. A sync worker holds one request at a time, so at most one."""
        server, nginx = behind_nginx
        load = DepositLoad(server, client=nginx.client)

        def kill_a_worker() -> None:
            before = server.worker_pids()
            server.signal_worker(min(before), signal.SIGKILL)
            wait_for(lambda: len(server.worker_pids() - before) == 1, server.replacement_bound, "a new worker")

        load.around(kill_a_worker, "the kill")
        failed = [outcome for outcome in load.outcomes if outcome != 200]
        print(f"{server.kind} behind nginx, a worker killed: {len(failed)} of {len(load.outcomes)} not 200: {failed}")
        held = load.clients if server.kind in self.workers_serve_many_at_once else 1
        assert all(map(lost_with_its_server, failed)) and len(failed) <= held, (failed, held)
        load.assert_every_deposit_applied_once()


@pytest.mark.topology
class HttpsBehindNginxChecks:
    """Include in the test module of a recipe that redirects plain HTTP to HTTPS by
    X-Forwarded-Proto (Django's ``SECURE_SSL_REDIRECT`` with ``SECURE_PROXY_SSL_HEADER``):
    its server redirecting, behind nginx taking HTTPS with a certificate of its own."""

    #: The settings that make the recipe's server redirect (its production default).
    redirect_env: ClassVar[dict[str, str]] = {}
    JSON: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}

    @pytest.fixture(scope="class")
    @classmethod
    def class_server_env(cls, server_kind: str) -> dict[str, str]:
        return {**uwsgi_socket_env(server_kind), **cls.redirect_env}

    @pytest.fixture(scope="class")
    @staticmethod
    def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
        return self_signed_certificate(tmp_path_factory.mktemp("tls"))

    def test_https_is_served_and_plain_http_redirected_whatever_the_client_claims(
        self, server: ServerProcess, recipe_dir: Path, certificate: tuple[Path, Path]
    ) -> None:
        """Over HTTPS, nginx says so (X-Forwarded-Proto: https) and the application
        serves, with HSTS. Over plain HTTP it is redirected to HTTPS, also when the client
        claims HTTPS itself (nginx replaces the header); /health is not redirected."""
        require_nginx()
        site = nginx_site(recipe_dir, server.kind)
        body = json.dumps({"full_name": "Ada", "email_address": "ada@example.com"}).encode()
        with Nginx(site, upstream(server), tls=certificate) as https, Nginx(site, upstream(server)) as plain:
            trusted = certificate[0]
            served = request_from(CLIENT_ADDRESS, https.port, "POST", "/accounts", body, self.JSON, certificate=trusted)
            assert served.status == 201, served
            assert "strict-transport-security" in served.headers, served.headers

            claimed = {**self.JSON, "X-Forwarded-Proto": "https"}
            redirected = request_from(CLIENT_ADDRESS, plain.port, "POST", "/accounts", body, claimed)
            assert redirected.status == 301, redirected
            location = redirected.headers["location"]
            assert location.startswith("https://127.0.0.1") and location.endswith("/accounts"), location

            assert request_from(CLIENT_ADDRESS, plain.port, "GET", "/health", b"", {}).status == 200
            assert lines_logged(https.access_log, "POST /accounts", 1)[0].endswith(" 201")
