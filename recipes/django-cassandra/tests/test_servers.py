"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each, on a real Cassandra node."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from cookbook_testing.servers import ServerProcess, wait_for
from cookbook_testing.standalone import ContractOverServer, StandaloneChecks


class TestContractOverServers(ContractOverServer):
    @pytest.fixture
    def count_events(self, server: ServerProcess, count_rows_in: Callable[[str], int]) -> Callable[[], int]:
        """The events in the server's keyspace (the test kit's counts rows in a SQL database)."""
        keyspace: str = server.keyspace  # type: ignore[attr-defined] - conftest.CassandraServer
        return lambda: count_rows_in(keyspace)


class TestServers(StandaloneChecks):
    def test_each_worker_constructs_its_application_when_forked(
        self, start_server: Callable[..., ServerProcess]
    ) -> None:
        """Before serving anything: the servers' post-fork hooks, not the first request, construct it."""
        server = start_server()

        def constructors() -> set[int]:
            return {int(pid) for pid in re.findall(r"constructed application \w+ in process (\d+)", server.log())}

        workers = server.worker_pids()
        assert wait_for(lambda: constructors() >= workers, 30, "every worker to construct its application")
        assert server.pid not in constructors(), "the master must not construct an application"


class TestLazyApps(StandaloneChecks):
    """uWSGI with lazy-apps: wsgi.py is imported in each worker, which constructs its application at once."""

    @pytest.fixture(scope="class")
    @classmethod
    def server_kind(cls) -> str:
        return "uwsgi"

    @pytest.fixture(scope="class")
    @classmethod
    def server_args(cls) -> list[str]:
        return ["--ini", "uwsgi.ini", "--lazy-apps"]
