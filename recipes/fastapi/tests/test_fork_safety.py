"""Why the application is built in the lifespan: the proof, on PostgreSQL.

The same load runs against two gunicorn servers (uvicorn's worker) serving the
same routes: one whose workers each build their application in the lifespan
(the recipe), one whose application was built at import time under
``preload_app``, in the master, and inherited by every worker (the
anti-pattern). The first must serve every request; the second must not, or this
test has failed to show the hazard.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cookbook_testing.fork_proof import (
    ANTIPATTERN_TIMEOUT,
    ROUNDS,
    assert_each_worker_has_its_own_connections,
    failures,
    open_accounts,
    open_until_one_fails,
    session_labels,
)
from cookbook_testing.servers import ServerProcess

pytestmark = pytest.mark.requires_postgresql

ANTIPATTERN_ARGS = ["-c", "tests/antipattern/gunicorn.conf.py"]


def test_built_in_the_lifespan_every_request_succeeds(recipe_dir: Path, make_database_url: Callable[[], str]) -> None:
    with ServerProcess("gunicorn", recipe_dir, env={"DATABASE_URL": make_database_url()}) as server:
        outcomes = open_accounts(server, ROUNDS)
    print(f"gunicorn, built in the lifespan: {len(failures(outcomes))} of {len(outcomes)} requests failed")
    assert failures(outcomes) == []


def test_built_at_import_under_preload_requests_fail(recipe_dir: Path, make_database_url: Callable[[], str]) -> None:
    database_url = make_database_url()
    with ServerProcess("gunicorn", recipe_dir, env={"DATABASE_URL": database_url}, args=ANTIPATTERN_ARGS) as server:
        # Before any request, the one connection is the master's, which every worker now holds.
        assert session_labels(database_url) == {f"bankaccounts-{server.pid}"}
        outcomes = open_accounts(server, ROUNDS, ANTIPATTERN_TIMEOUT)
        print(f"gunicorn, built at import: {len(failures(outcomes))} of {len(outcomes)} requests failed")
        outcomes = open_until_one_fails(server, outcomes)  # bounded: never let luck decide
        server.kill()  # its workers may wait for ever on the connection they share
    assert failures(outcomes), f"the anti-pattern served all {len(outcomes)} requests: it no longer shows the hazard"
    print(f"gunicorn, built at import: failures seen: {sorted(set(map(str, failures(outcomes))))}")


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn", "granian"])
def test_each_worker_has_its_own_database_connections(
    kind: str, recipe_dir: Path, make_database_url: Callable[[], str]
) -> None:
    database_url = make_database_url()
    with ServerProcess(kind, recipe_dir, env={"DATABASE_URL": database_url}) as server:
        assert_each_worker_has_its_own_connections(server, database_url)
