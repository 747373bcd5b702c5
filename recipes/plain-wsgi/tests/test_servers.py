"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

import pytest

from cookbook_testing.standalone import ContractOverServer, StandaloneChecks


class TestContractOverServers(ContractOverServer):
    pass


class TestServers(StandaloneChecks):
    pass


class TestUWSGILazyApps(StandaloneChecks):
    """The alternative: uWSGI imports wsgi.py in each worker, after the fork."""

    @pytest.fixture(scope="class")
    @classmethod
    def server_kind(cls) -> str:
        return "uwsgi"

    @pytest.fixture(scope="class")
    @classmethod
    def server_args(cls) -> list[str]:
        return ["--ini", "uwsgi.ini", "--lazy-apps"]
