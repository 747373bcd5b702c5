"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

from __future__ import annotations

import signal
from collections.abc import Callable

import psutil

from cookbook_testing.faults import StoreBehindAProxy
from cookbook_testing.servers import ServerProcess, wait_for
from cookbook_testing.standalone import ContractOverServer, StandaloneChecks, UWSGILazyAppsChecks, applications_by_pid


def cassandra_connections(pid: int, port: int) -> int:
    """How many TCP connections process ``pid`` has open to Cassandra's CQL port."""
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in connections if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


class TestContractOverServers(ContractOverServer):
    pass


class TestServers(StandaloneChecks):
    def test_each_worker_has_its_own_cassandra_connections_and_the_master_none(
        self, server: ServerProcess, cassandra_contact: tuple[list[str], int]
    ) -> None:
        _, port = cassandra_contact
        workers = set(applications_by_pid(server))
        assert all(cassandra_connections(pid, port) > 0 for pid in workers), "a worker without its own session"
        # The master created the schema and shut its Cluster down before forking.
        assert cassandra_connections(server.pid, port) == 0

    def test_a_worker_started_while_cassandra_is_unreachable_serves_once_it_is_back(
        self, start_server: Callable[..., ServerProcess], store_behind_a_fault_proxy: StoreBehindAProxy
    ) -> None:
        """A worker replaced while the node is unreachable starts anyway (its post-fork
        connection fails and says so), so the server keeps running; it serves once the
        node is back, with no restart."""
        node = store_behind_a_fault_proxy.proxy
        server = store_behind_a_fault_proxy.start(start_server)
        opened = server.client.post("/accounts", json={"full_name": "Ada", "email_address": "ada@example.com"})
        account = f"/accounts/{opened.json['id']}"
        node.go_down()
        before = server.worker_pids()
        server.signal_worker(min(before), signal.SIGKILL)
        (replacement,) = wait_for(lambda: server.worker_pids() - before, 30, "a replacement worker")
        wait_for(
            lambda: f"[{replacement}] bank.accounts WARNING: cannot reach Cassandra yet" in server.log(),
            30,
            "its start",
        )
        assert server.returncode is None, "the server stopped"
        node.come_back()

        def served_again() -> bool:
            # The old workers' drivers reconnect on their own schedule (back-off); the
            # replacement connects on a request of its own: keep asking until both happened.
            answers = {server.client.get(account).status for _ in range(server.workers * 4)}
            return answers == {200} and cassandra_connections(replacement, node.port) > 0

        wait_for(served_again, 60, "every worker, the replacement too, to serve from Cassandra again")


class TestUWSGILazyApps(UWSGILazyAppsChecks):
    """The alternative: uWSGI imports wsgi.py in each worker, after the fork."""
