"""Stand-alone checks of a recipe on two app hosts behind one nginx.

A host here is simulated as Cassandra's cluster tools run a ring on one
machine: a set of processes bound to a loopback address of its own
(``127.0.0.2``, ``127.0.0.3``), started and stopped together. Each app host runs
the recipe's server with the recipe's four workers, both on one database;
nginx, with the recipe's site file naming both hosts, takes turns between them.

``ContractThroughSeveralHosts``: the HTTP contract through nginx and both hosts.
``SeveralHostsChecks``: the contention check across both hosts; a host stopped
(SIGTERM) or lost (SIGKILL to every process of it) under load, costing at most
the requests in flight there while nginx sends the rest to the other; and the
database's server sessions for the two hosts, straight and through PgBouncer.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bankaccounts.hosts import DEFAULT_ALLOWED_HOSTS
from cookbook_testing.contract import HttpContract
from cookbook_testing.databases import server_backends
from cookbook_testing.http import Client
from cookbook_testing.nginx import Nginx
from cookbook_testing.pgbouncer import PgBouncer, give_the_database_its_limits, pgbouncer_binary
from cookbook_testing.proxy_checks import (
    lines_logged,
    lost_with_its_server,
    nginx_site,
    require_nginx,
    upstream,
    uwsgi_socket_env,
)
from cookbook_testing.servers import RECIPE_WORKERS, ServerProcess
from cookbook_testing.standalone import DEPOSITS, DepositLoad, deposit_at_once_into_one_account

__all__ = ["APP_HOSTS", "ContractThroughSeveralHosts", "SeveralHostsChecks"]

#: The app hosts' addresses (nginx and the database stay on 127.0.0.1).
APP_HOSTS = ("127.0.0.2", "127.0.0.3")
#: PgBouncer's server connections for both hosts: two for each worker's command at a
#: time (its lock's transaction and its write's; docs/topics/pgbouncer.rst), every worker
#: of every host. Fewer, and writers wait on each other's connections till they time out.
POOL_SIZE = 2 * RECIPE_WORKERS * len(APP_HOSTS)


@dataclass
class Hosts:
    """The app hosts' servers, and nginx in front of them all."""

    servers: list[ServerProcess]
    nginx: Nginx


#: Starts the recipe's server on a host (its address, and the host's own settings).
StartOnHost = Callable[[str, dict[str, str]], ServerProcess]


@contextmanager
def app_hosts(start_on: StartOnHost, server_kind: str, recipe_dir: Path) -> Iterator[Hosts]:
    """The recipe's server on each of ``APP_HOSTS``, started by ``start_on``, and nginx
    in front of both; every process of both hosts killed after."""
    require_nginx()
    servers: list[ServerProcess] = []
    try:
        for host in APP_HOSTS:
            # The host's own name too: the readiness checks talk to it straight.
            allowed = {"ALLOWED_HOSTS": ",".join([*DEFAULT_ALLOWED_HOSTS, host])}
            servers.append(start_on(host, {**uwsgi_socket_env(server_kind, host), **allowed}))
        with Nginx(nginx_site(recipe_dir, server_kind), [upstream(server) for server in servers]) as nginx:
            yield Hosts(servers, nginx)
    finally:
        for server in servers:
            server.kill()


def starting_with(
    start_server: Callable[..., ServerProcess], store: Mapping[str, str], env: Mapping[str, str] | None = None
) -> StartOnHost:
    """Start on a host with ``start_server`` (the plugin's), the recipe's workers, on ``store``."""
    return lambda host, host_env: start_server(
        store=store, env={**host_env, **(env or {})}, workers=RECIPE_WORKERS, host=host
    )


@pytest.mark.topology
@pytest.mark.requires_a_database_server
class ContractThroughSeveralHosts(HttpContract):
    """The HTTP contract through nginx, in front of the recipe's server on two hosts
    (one pair for the class: the contract leaves them serving)."""

    nul_in_path_status = 400  # nginx refuses it, before any server sees it

    @pytest.fixture(scope="class")
    @staticmethod
    def hosts(
        server_kind: str,
        recipe_dir: Path,
        class_store_env: dict[str, str],
        server_env: dict[str, str],
        server_args: list[str] | None,
    ) -> Iterator[Hosts]:
        def start_on(host: str, host_env: dict[str, str]) -> ServerProcess:
            env = {**class_store_env, **server_env, **host_env}
            return ServerProcess(server_kind, recipe_dir, env=env, args=server_args, host=host).start()

        with app_hosts(start_on, server_kind, recipe_dir) as hosts:
            yield hosts

    @pytest.fixture
    @staticmethod
    def api(hosts: Hosts) -> Client:
        return hosts.nginx.client

    @pytest.fixture
    @staticmethod
    def count_events(
        class_store_env: dict[str, str], count_store_events: Callable[[Mapping[str, str]], int]
    ) -> Callable[[], int]:
        return lambda: count_store_events(class_store_env)


@pytest.mark.topology
@pytest.mark.requires_a_database_server
class SeveralHostsChecks:
    """Include in a web recipe's ``test_servers.py``: its server on two hosts behind nginx."""

    @pytest.fixture
    @staticmethod
    def store(
        make_store_env: Callable[[], dict[str, str]], discard_store_env: Callable[[Mapping[str, str]], None]
    ) -> Iterator[dict[str, str]]:
        """One new store for both hosts (``start_server`` makes one per server)."""
        store = make_store_env()
        yield store
        discard_store_env(store)

    @pytest.fixture
    @staticmethod
    def hosts(
        start_server: Callable[..., ServerProcess], server_kind: str, recipe_dir: Path, store: dict[str, str]
    ) -> Iterator[Hosts]:
        with app_hosts(starting_with(start_server, store), server_kind, recipe_dir) as hosts:
            yield hosts

    def test_both_hosts_serve_and_every_deposit_is_applied_once(self, hosts: Hosts) -> None:
        """The contention check through nginx, the deposits spread over both hosts'
        eight workers, each handed to one host once."""
        deposit_at_once_into_one_account(hosts.servers[0], client=hosts.nginx.client)
        lines = lines_logged(hosts.nginx.access_log, "/deposit", DEPOSITS)
        by_host = {upstream(server): sum(f'"{upstream(server)}"' in line for line in lines) for server in hosts.servers}
        print(f"{hosts.servers[0].kind} on two hosts: deposits per host {sorted(by_host.values())}")
        assert sum(by_host.values()) == DEPOSITS, lines  # each to one host only, never passed on
        assert all(by_host.values()), by_host

    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "lost"])
    def test_a_host_gone_under_load_costs_at_most_its_requests_in_flight(
        self, hosts: Hosts, signum: signal.Signals
    ) -> None:
        """Deposits through nginx while one host stops (SIGTERM to its server: it finishes
        what it holds) or is lost (SIGKILL to every process of it). Only a request the
        host held may fail (nginx's 502, or an answer cut off), and its client sends it
        again with its key;
        every request after that is served by the other host, and each deposit is
        applied once."""
        gone, staying = hosts.servers
        load = DepositLoad(staying, client=hosts.nginx.client)
        clients = load.clients  # each has one request out at a time

        def take_the_host_away() -> int:
            if signum == signal.SIGTERM:
                assert gone.stop(signal.SIGTERM) == 0
            else:
                gone.kill()
            return len(load.outcomes)  # the host is gone: none of its connections is open

        answered = load.around(take_the_host_away, f"host {gone.host} {signum.name}", requests=40)
        failed = [outcome for outcome in load.outcomes if outcome != 200]
        # Past the answers the clients had on their way when the host went: the other host's.
        later = load.outcomes[answered + clients :]
        print(
            f"{gone.kind}: host {gone.host} {signum.name} under load through nginx: {len(failed)} of "
            f"{len(load.outcomes)} requests not 200 {failed}; {len(later)} answered after it"
        )
        assert all(map(lost_with_its_server, failed)) and len(failed) <= clients, failed
        assert later and set(later) == {200}, later  # nginx sends the rest to the host still up
        load.assert_every_deposit_applied_once()

    def test_a_host_taken_out_of_nginx_before_it_stops_costs_no_request(self, hosts: Hosts) -> None:
        """The way to stop a host under load: out of nginx's turns first (``down``, and a
        graceful reload), then SIGTERM. Every request answered 200, each deposit once."""
        gone, staying = hosts.servers
        load = DepositLoad(staying, client=hosts.nginx.client)

        def drain_then_stop() -> None:
            hosts.nginx.take_out(upstream(gone))
            assert gone.stop(signal.SIGTERM) == 0

        load.around(drain_then_stop, f"host {gone.host} taken out and stopped", requests=40)
        failed = [outcome for outcome in load.outcomes if outcome != 200]
        print(f"{gone.kind}: host {gone.host} taken out, then stopped: {len(failed)} of {len(load.outcomes)} not 200")
        assert failed == []
        load.assert_every_deposit_applied_once()

    @pytest.mark.requires_postgresql
    def test_server_sessions_of_two_hosts_straight_and_through_pgbouncer(
        self,
        hosts: Hosts,
        start_server: Callable[..., ServerProcess],
        server_kind: str,
        recipe_dir: Path,
        store: dict[str, str],
    ) -> None:
        """The database's sessions after the contention check: from the two hosts'
        eight workers straight, then through PgBouncer in transaction pooling (at most
        its pool). Both printed; the pooled count bounded."""
        if pgbouncer_binary() is None:
            pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        database_url = store["DATABASE_URL"]
        deposit_at_once_into_one_account(hosts.servers[0], client=hosts.nginx.client)
        straight = len(server_backends(database_url))
        for server in hosts.servers:
            server.kill()
        give_the_database_its_limits(database_url)
        with PgBouncer(database_url, pool_mode="transaction", pool_size=POOL_SIZE) as pgbouncer:
            pooled_store = {**store, "DATABASE_URL": pgbouncer.url(database_url)}
            transaction_pooling = {"PGBOUNCER_POOL_MODE": "transaction"}
            start_on = starting_with(start_server, pooled_store, transaction_pooling)
            with app_hosts(start_on, server_kind, recipe_dir) as pooled:
                deposit_at_once_into_one_account(pooled.servers[0], client=pooled.nginx.client)
                through_pgbouncer = len(server_backends(database_url))
        print(
            f"{server_kind}, {len(APP_HOSTS)} hosts x {RECIPE_WORKERS} workers: {straight} server sessions "
            f"straight, {through_pgbouncer} through PgBouncer (transaction pooling, pool of {POOL_SIZE})"
        )
        assert 0 < through_pgbouncer <= POOL_SIZE
