"""Stand-alone checks: this recipe's uwsgi.ini and gunicorn.conf.py, 4 workers each."""

from __future__ import annotations

from cookbook_testing.pooler_checks import BehindPgBouncerChecks
from cookbook_testing.proxy_checks import BehindNginxChecks, ContractThroughNginx, HttpsBehindNginxChecks
from cookbook_testing.standalone import (
    ConstructedWhenForkedChecks,
    ContractOverServer,
    StandaloneChecks,
    UWSGILazyAppsChecks,
    UWSGIStopChecks,
)


class TestContractOverServers(ContractOverServer):
    pass


class TestContractThroughNginx(ContractThroughNginx):
    pass


class TestServers(ConstructedWhenForkedChecks, StandaloneChecks):
    pass


class TestLazyApps(UWSGILazyAppsChecks):
    """uWSGI with lazy-apps: wsgi.py is imported in each worker, which constructs its application at once."""


class TestUWSGIStop(UWSGIStopChecks):
    """A stop while uWSGI replaces a worker."""


class TestBehindNginx(BehindNginxChecks):
    """nginx in front: uwsgi_pass to uWSGI's own socket, proxy_pass to gunicorn."""


class TestHttpsBehindNginx(HttpsBehindNginxChecks):
    """nginx taking HTTPS; the project redirecting plain HTTP there, as in production."""

    redirect_env = {"DJANGO_SECURE_SSL_REDIRECT": "1"}


class TestBehindPgBouncer(BehindPgBouncerChecks):
    """Its workers through PgBouncer in transaction pooling (PGBOUNCER_POOL_MODE)."""
