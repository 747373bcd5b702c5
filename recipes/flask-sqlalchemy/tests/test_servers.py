"""Stand-alone checks: this recipe's uwsgi.ini, gunicorn.conf.py and serve_granian.py, 4 workers each."""

from cookbook_testing.pooler_checks import BehindPgBouncerChecks
from cookbook_testing.proxy_checks import BehindNginxChecks, ContractThroughNginx
from cookbook_testing.standalone import (
    ContractOverServer,
    StandaloneChecks,
    UWSGIStopChecks,
)


class TestContractOverServers(ContractOverServer):
    half_close_is_a_client_gone = frozenset({"granian"})


class TestContractThroughNginx(ContractThroughNginx):
    pass


class TestServers(StandaloneChecks):
    server_timeout_keeps_the_worker = frozenset({"granian"})  # serve_granian.py's RequestDeadline
    # uWSGI's, and Granian's as under FastAPI: see StandaloneChecks.
    reload_closes_connections_under_requests = StandaloneChecks.reload_closes_connections_under_requests | {"granian"}


class TestUWSGIStop(UWSGIStopChecks):
    """A stop while uWSGI replaces a worker."""


class TestBehindNginx(BehindNginxChecks):
    """nginx in front: uwsgi_pass to uWSGI's own socket, proxy_pass to gunicorn and Granian."""

    reload_may_cost_a_502 = frozenset({"uwsgi", "granian"})  # see BehindNginxChecks
    # Granian's worker takes connections while its one thread serves: those it holds die with it.
    workers_serve_many_at_once = frozenset({"granian"})


class TestBehindPgBouncer(BehindPgBouncerChecks):
    """Its workers through PgBouncer in transaction pooling (PGBOUNCER_POOL_MODE)."""
