"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

from cookbook_testing.hosts_checks import ContractThroughSeveralHosts, SeveralHostsChecks
from cookbook_testing.pooler_checks import BehindPgBouncerChecks
from cookbook_testing.proxy_checks import BehindNginxChecks, ContractThroughNginx
from cookbook_testing.standalone import (
    ContractOverServer,
    StandaloneChecks,
    UWSGILazyAppsChecks,
    UWSGIStopChecks,
    WorkerStartedDuringAnOutageChecks,
)
from cookbook_testing.systemd_checks import ReadyForSystemdChecks


class TestContractOverServers(ContractOverServer):
    pass


class TestContractThroughNginx(ContractThroughNginx):
    pass


class TestServers(WorkerStartedDuringAnOutageChecks, StandaloneChecks):
    started_without_the_store = "worker {pid} starts without its application"


class TestUWSGILazyApps(UWSGILazyAppsChecks):
    """The alternative: uWSGI imports wsgi.py in each worker, after the fork."""


class TestUWSGIStop(UWSGIStopChecks):
    """A stop while uWSGI replaces a worker."""


class TestBehindPgBouncer(BehindPgBouncerChecks):
    """Its workers through PgBouncer in transaction pooling (PGBOUNCER_POOL_MODE)."""


class TestBehindNginx(BehindNginxChecks):
    """nginx in front: uwsgi_pass to uWSGI's own socket, proxy_pass to gunicorn."""


class TestReadyForSystemd(ReadyForSystemdChecks):
    """Both servers tell systemd when they are ready (shared/deploy/systemd: Type=notify)."""


class TestSeveralHosts(SeveralHostsChecks):
    """Two app hosts (127.0.0.2, 127.0.0.3), 4 workers each, behind one nginx."""


class TestContractThroughSeveralHosts(ContractThroughSeveralHosts):
    pass
