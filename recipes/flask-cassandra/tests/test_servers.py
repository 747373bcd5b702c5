"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

from __future__ import annotations

import psutil

from cookbook_testing.faults import StoreBehindAProxy
from cookbook_testing.proxy_checks import BehindNginxChecks, ContractThroughNginx
from cookbook_testing.servers import ServerProcess
from cookbook_testing.standalone import (
    ContractOverServer,
    StandaloneChecks,
    UWSGILazyAppsChecks,
    UWSGIStopChecks,
    WorkerStartedDuringAnOutageChecks,
    applications_by_pid,
)


def cassandra_connections(pid: int, port: int) -> int:
    """How many TCP connections process ``pid`` has open to Cassandra's CQL port."""
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in connections if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


class TestContractOverServers(ContractOverServer):
    pass


class TestContractThroughNginx(ContractThroughNginx):
    pass


class TestServers(WorkerStartedDuringAnOutageChecks, StandaloneChecks):
    started_without_the_store = "[{pid}] bank.accounts WARNING: cannot reach Cassandra yet"

    def served_again(self, server: ServerProcess, replacement: int, store: StoreBehindAProxy) -> bool:
        # The replacement connects on a request of its own, through the proxy.
        return cassandra_connections(replacement, store.proxy.port) > 0

    def test_each_worker_has_its_own_cassandra_connections_and_the_master_none(
        self, server: ServerProcess, cassandra_contact: tuple[list[str], int]
    ) -> None:
        _, port = cassandra_contact
        workers = set(applications_by_pid(server))
        assert all(cassandra_connections(pid, port) > 0 for pid in workers), "a worker without its own session"
        # The master created the schema and shut its Cluster down before forking.
        assert cassandra_connections(server.pid, port) == 0


class TestUWSGILazyApps(UWSGILazyAppsChecks):
    """The alternative: uWSGI imports wsgi.py in each worker, after the fork."""


class TestUWSGIStop(UWSGIStopChecks):
    """A stop while uWSGI replaces a worker."""


class TestBehindNginx(BehindNginxChecks):
    """nginx in front: uwsgi_pass to uWSGI's own socket, proxy_pass to gunicorn."""
