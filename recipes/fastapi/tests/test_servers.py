"""Stand-alone checks: serve_uvicorn.py, gunicorn.conf.py (uvicorn's worker) and serve_granian.py, 4 workers each."""

from cookbook_testing.standalone import ContractOverServer, StandaloneChecks, WorkerStartedDuringAnOutageChecks


class TestContractOverServers(ContractOverServer):
    asgi = True


class TestServers(WorkerStartedDuringAnOutageChecks, StandaloneChecks):
    started_without_the_store = "worker {pid} starts without its application"
    reload_resets_accepted_connections = frozenset({"uvicorn", "gunicorn"})  # uvicorn#2757: see StandaloneChecks
    server_timeout_replaces_the_worker = False  # bank_api.call_application answers 503 itself
