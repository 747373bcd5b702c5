"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

from cookbook_testing.pooler_checks import BehindPgBouncerChecks
from cookbook_testing.proxy_checks import BehindNginxChecks, ContractThroughNginx
from cookbook_testing.standalone import (
    ContractOverServer,
    StandaloneChecks,
    UWSGIStopChecks,
)


class TestContractOverServers(ContractOverServer):
    pass


class TestContractThroughNginx(ContractThroughNginx):
    pass


class TestServers(StandaloneChecks):
    pass


class TestUWSGIStop(UWSGIStopChecks):
    """A stop while uWSGI replaces a worker."""


class TestBehindNginx(BehindNginxChecks):
    """nginx in front: uwsgi_pass to uWSGI's own socket, proxy_pass to gunicorn."""


class TestBehindPgBouncer(BehindPgBouncerChecks):
    """Its workers through PgBouncer in transaction pooling (PGBOUNCER_POOL_MODE)."""
