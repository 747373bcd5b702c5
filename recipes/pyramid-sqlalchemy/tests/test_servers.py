"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

from cookbook_testing.standalone import (
    ContractOverServer,
    StandaloneChecks,
    UWSGIStopChecks,
)


class TestContractOverServers(ContractOverServer):
    pass


class TestServers(StandaloneChecks):
    pass


class TestUWSGIStop(UWSGIStopChecks):
    """A stop while uWSGI replaces a worker."""
