"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

import signal
from collections.abc import Callable

import pytest

from cookbook_testing.faults import FaultProxy
from cookbook_testing.servers import ServerProcess, wait_for
from cookbook_testing.standalone import ContractOverServer, StandaloneChecks, UWSGILazyAppsChecks, applications_by_pid


class TestContractOverServers(ContractOverServer):
    pass


class TestServers(StandaloneChecks):
    @pytest.mark.requires_postgresql
    def test_a_worker_started_during_an_outage_serves_once_the_database_is_back(
        self, start_server: Callable[..., ServerProcess], database_behind_a_fault_proxy: FaultProxy
    ) -> None:
        """A worker replaced while PostgreSQL is down starts without its application (gunicorn
        used to stop the whole server: 'Worker failed to boot'), and serves once the database
        is back, with no restart."""
        database = database_behind_a_fault_proxy
        server = start_server(store={"DATABASE_URL": database.url})
        opened = server.client.post("/accounts", json={"full_name": "Ada", "email_address": "ada@example.com"})
        account = f"/accounts/{opened.json['id']}"
        database.go_down()
        before = server.worker_pids()
        server.signal_worker(min(before), signal.SIGKILL)
        (replacement,) = wait_for(lambda: server.worker_pids() - before, 30, "a replacement worker")
        wait_for(lambda: f"worker {replacement} starts without its application" in server.log(), 30, "its start")
        assert server.returncode is None, "the server stopped"
        database.come_back()
        serving = wait_for(lambda: applications_by_pid(server), 60, "every worker to serve again")
        assert replacement in serving
        assert {server.client.get(account).status for _ in range(server.workers * 4)} == {200}


class TestUWSGILazyApps(UWSGILazyAppsChecks):
    """The alternative: uWSGI imports wsgi.py in each worker, after the fork."""
