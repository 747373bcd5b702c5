"""Stand-alone checks: serve_uvicorn.py, gunicorn.conf.py (uvicorn's worker) and serve_granian.py, 4 workers each."""

from cookbook_testing.pooler_checks import BehindPgBouncerChecks
from cookbook_testing.proxy_checks import BehindNginxChecks, ContractThroughNginx
from cookbook_testing.standalone import ContractOverServer, StandaloneChecks, WorkerStartedDuringAnOutageChecks


class TestContractOverServers(ContractOverServer):
    half_close_is_a_client_gone = frozenset({"uvicorn", "gunicorn", "granian"})


class TestContractThroughNginx(ContractThroughNginx):
    pass


class TestServers(WorkerStartedDuringAnOutageChecks, StandaloneChecks):
    started_without_the_store = "worker {pid} starts without its application"
    reload_closes_connections_under_requests = frozenset({"uvicorn", "gunicorn", "granian"})  # see StandaloneChecks
    server_timeout_keeps_the_worker = frozenset({"uvicorn", "gunicorn", "granian"})  # call_application answers 503


class TestBehindPgBouncer(BehindPgBouncerChecks):
    """Its workers through PgBouncer in transaction pooling (PGBOUNCER_POOL_MODE)."""

    pooled_server = "uvicorn"


class TestBehindNginx(BehindNginxChecks):
    """nginx in front of each server, over HTTP (proxy_pass)."""

    reload_may_cost_a_502 = frozenset({"uvicorn", "gunicorn", "granian"})  # see BehindNginxChecks
    workers_serve_many_at_once = frozenset({"uvicorn", "gunicorn", "granian"})
