"""Stand-alone checks of a recipe whose workers reach PostgreSQL through PgBouncer.

``BehindPgBouncerChecks``: the recipe's server, at full width, its
``DATABASE_URL`` pointing at a real PgBouncer in transaction pooling
(``PGBOUNCER_POOL_MODE=transaction``), the database giving every session the
application's limits. A recipe on eventsourcing's own PostgreSQL store
includes it, naming the server it runs under (one is enough: what is checked
is the store's connections, not the server).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cookbook_testing.databases import server_backends
from cookbook_testing.pgbouncer import PgBouncer, give_the_database_its_limits, pgbouncer_binary
from cookbook_testing.servers import RECIPE_WORKERS, ServerProcess
from cookbook_testing.standalone import deposit_at_once_into_one_account

__all__ = ["BehindPgBouncerChecks"]

#: PgBouncer's server connections: two for each worker's command at a time (its
#: lock's transaction and its write's; docs/topics/pgbouncer.rst).
POOL_SIZE = 2 * RECIPE_WORKERS


@pytest.mark.topology
@pytest.mark.requires_postgresql
class BehindPgBouncerChecks:
    #: The server the checks run under.
    pooled_server = "uwsgi"

    @pytest.fixture(scope="class")
    @classmethod
    def server_kind(cls) -> str:
        return cls.pooled_server

    def test_concurrent_deposits_through_pgbouncer_in_transaction_pooling(
        self, start_server: Callable[..., ServerProcess], make_store_env: Callable[[], dict[str, str]]
    ) -> None:
        """Every deposit of the contention check applied once, on no more server
        connections than PgBouncer's pool, and the workers' statements unprepared."""
        if pgbouncer_binary() is None:
            pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        store = make_store_env()
        database_url = store["DATABASE_URL"]
        give_the_database_its_limits(database_url)
        with PgBouncer(database_url, pool_mode="transaction", pool_size=POOL_SIZE) as pgbouncer:
            server = start_server(
                store={**store, "DATABASE_URL": pgbouncer.url(database_url)},
                env={"PGBOUNCER_POOL_MODE": "transaction"},
                workers=RECIPE_WORKERS,
            )
            deposit_at_once_into_one_account(server)
            sessions = server_backends(database_url)
            assert len(sessions) <= POOL_SIZE, sessions
            assert "prepared statement" not in server.log() + pgbouncer.log()
            print(f"{server.kind} x{RECIPE_WORKERS} behind PgBouncer (transaction): {len(sessions)} server sessions")
