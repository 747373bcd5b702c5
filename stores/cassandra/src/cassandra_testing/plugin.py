"""pytest plugin: a real Cassandra node for the session, a fresh keyspace per test.

Enable it in a ``conftest.py``::

    pytest_plugins = ["cassandra_testing.plugin"]

It brings the cookbook's test kit (``cookbook_testing.plugin``) with it, and
gives the kit its Cassandra store (``cookbook_store = cassandra`` in
``pytest.ini``): ``make_store_env``, ``count_store_events`` and
``store_behind_a_fault_proxy`` then make keyspaces on this node.

If ``CASSANDRA_HOSTS`` is set (``host[:port],...``), the tests use that
cluster and start nothing; its keyspaces are created and dropped per test
(the user needs permission to do so). Otherwise one node is started for the
session (``cassandra_testing.node``) from jars that Maven resolves into the
cache folder: ``CASSANDRA_CACHE_DIR``, or ``.cache`` beside the pytest root
(which git ignores). Under ``CI=true`` a skipped test counts as a failure (the
kit's rule); tests of the local node itself are marked ``requires_local_node``
and deselected (not skipped) when ``CASSANDRA_HOSTS`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cassandra_testing.node import CassandraNode, CassandraRing, configured_hosts
from cookbook_testing.faults import FaultProxy, StoreBehindAProxy

if TYPE_CHECKING:
    from cassandra.cluster import Session

pytest_plugins = ["cookbook_testing.plugin"]

_node: CassandraNode | None = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires_local_node: checks the node started here; deselected when CASSANDRA_HOSTS is set"
    )
    config.addinivalue_line(
        "markers",
        "ring: runs on a ring of three nodes started here (127.0.0.1-3); only when selected, `-m ring`",
    )


@pytest.fixture(scope="session")
def cassandra_ring(cassandra_cache_dir: Path) -> Iterator[CassandraRing]:
    """Three nodes on 127.0.0.1-3, started once for the session, shared by the ring tests."""
    with CassandraRing(cassandra_cache_dir) as ring:
        yield ring


#: The ring tests' keyspaces: every replica on each node of three.
RING_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 3}"


@pytest.fixture
def ring_store_env(cassandra_ring: CassandraRing) -> Iterator[dict[str, str]]:
    """Settings for ``eventsourcing_cassandra`` on the ring, in a new keyspace with three
    replicas: writes and reads at QUORUM, lightweight transactions at SERIAL (two replicas
    of three must answer). Afterwards every node is running again, whatever the test left
    down, and the keyspace is dropped."""
    from cassandra.cluster import Cluster

    keyspace = f"ring_{uuid.uuid4().hex[:16]}"
    cluster = Cluster(cassandra_ring.hosts, port=cassandra_ring.port, protocol_version=5)
    session = cluster.connect()
    try:
        session.execute(f"CREATE KEYSPACE {keyspace} WITH replication = {RING_REPLICATION}", timeout=120)
        yield {
            "PERSISTENCE_MODULE": "eventsourcing_cassandra",
            "CASSANDRA_HOSTS": ",".join(f"{host}:{cassandra_ring.port}" for host in cassandra_ring.hosts),
            "CASSANDRA_KEYSPACE": keyspace,
            "CASSANDRA_CONSISTENCY": "QUORUM",
            "CASSANDRA_SERIAL_CONSISTENCY": "SERIAL",
        }
        cassandra_ring.bring_back()
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Three more JVMs and three loopback addresses (which not every system has):
    # the ring tests run only when asked for by name.
    if "ring" not in (config.option.markexpr or ""):
        unasked = [item for item in items if item.get_closest_marker("ring")]
        if unasked:
            config.hook.pytest_deselected(items=unasked)
            items[:] = [item for item in items if not item.get_closest_marker("ring")]
    if configured_hosts() is None:
        return
    deselected = [item for item in items if item.get_closest_marker("requires_local_node")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("requires_local_node")]


@pytest.fixture(scope="session")
def cassandra_cache_dir(pytestconfig: pytest.Config) -> Path:
    configured = os.environ.get("CASSANDRA_CACHE_DIR", "").strip()
    return Path(configured) if configured else pytestconfig.rootpath / ".cache"


@pytest.fixture(scope="session")
def cassandra_node(cassandra_cache_dir: Path) -> Iterator[CassandraNode | None]:
    """The node started for this session, or None when ``CASSANDRA_HOSTS`` names a cluster."""
    global _node
    if configured_hosts() is not None:
        yield None
        return
    with CassandraNode(cassandra_cache_dir, quick_start=True) as node:
        _node = node
        try:
            yield node
        finally:
            _node = None


@pytest.fixture(scope="session")
def cassandra_contact(cassandra_node: CassandraNode | None) -> tuple[list[str], int]:
    """(hosts, CQL port) of the cluster under test."""
    if cassandra_node is not None:
        return cassandra_node.hosts, cassandra_node.port
    configured = configured_hosts()
    assert configured is not None
    return configured


@pytest.fixture(scope="session")
def cassandra_hosts_setting(cassandra_contact: tuple[list[str], int]) -> str:
    """The cluster as a ``CASSANDRA_HOSTS`` value."""
    hosts, port = cassandra_contact
    return ",".join(f"{host}:{port}" for host in hosts)


@pytest.fixture(scope="session")
def cassandra_admin(cassandra_contact: tuple[list[str], int]) -> Iterator[Session]:
    """A driver session of the test process, for creating and dropping keyspaces."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    hosts, port = cassandra_contact
    username = os.environ.get("CASSANDRA_USERNAME", "")
    auth = PlainTextAuthProvider(username, os.environ.get("CASSANDRA_PASSWORD", "")) if username else None
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=120)
    cluster = Cluster(
        hosts,
        port=port,
        auth_provider=auth,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},  # type: ignore[has-type]  # the driver's import cycles hide its type
        protocol_version=5,
    )
    session = cluster.connect()
    try:
        yield session
    finally:
        cluster.shutdown()


@pytest.fixture
def cassandra_keyspace(cassandra_admin: Session) -> Iterator[str]:
    """A new, empty keyspace for this test (replication factor 1 unless
    ``CASSANDRA_REPLICATION`` says otherwise); dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:20]}"
    replication = os.environ.get("CASSANDRA_REPLICATION") or "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    cassandra_admin.execute(f"CREATE KEYSPACE {name} WITH replication = {replication}", timeout=120)
    yield name
    cassandra_admin.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)


@pytest.fixture
def cassandra_env(cassandra_hosts_setting: str, cassandra_keyspace: str) -> dict[str, str]:
    """Settings for ``eventsourcing_cassandra`` on this test's keyspace."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing_cassandra",
        "CASSANDRA_HOSTS": cassandra_hosts_setting,
        "CASSANDRA_KEYSPACE": cassandra_keyspace,
    }


@pytest.fixture(scope="session")
def new_keyspace(cassandra_admin: Session) -> Iterator[Callable[[], str]]:
    """Names a keyspace for the recipe to create itself (as it would in production);
    every keyspace named is dropped when the session ends, after the servers stopped."""
    names: list[str] = []

    def new() -> str:
        names.append(f"test_{uuid.uuid4().hex[:20]}")
        return names[-1]

    yield new
    for name in names:
        cassandra_admin.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)


@pytest.fixture(scope="session")
def drop_cassandra_store_env(cassandra_admin: Session) -> Callable[[Mapping[str, str]], None]:
    """The kit's ``discard_store_env`` on Cassandra: drop the keyspace (``new_keyspace``
    drops it again at the session's end, which then finds it gone)."""

    def drop(env: Mapping[str, str]) -> None:
        cassandra_admin.execute(f"DROP KEYSPACE IF EXISTS {env['CASSANDRA_KEYSPACE']}", timeout=120)

    return drop


@pytest.fixture(scope="session")
def new_cassandra_store_env(
    cassandra_hosts_setting: str, new_keyspace: Callable[[], str]
) -> Callable[[], dict[str, str]]:
    """The kit's ``make_store_env`` on Cassandra: the cluster, and a new keyspace."""
    return lambda: {"CASSANDRA_HOSTS": cassandra_hosts_setting, "CASSANDRA_KEYSPACE": new_keyspace()}


@pytest.fixture(scope="session")
def count_cassandra_events(cassandra_admin: Session, events_table: str) -> Callable[[Mapping[str, str]], int]:
    """The kit's ``count_store_events`` on Cassandra: the rows of the events table of the
    keyspace ``CASSANDRA_KEYSPACE`` names, read straight from Cassandra. Every row counts,
    committed or not, so "a refused request writes nothing" is checked at its strictest.
    QUORUM, as the store writes: exact on a cluster too."""
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    def count(env: Mapping[str, str]) -> int:
        statement = SimpleStatement(
            f"SELECT COUNT(*) FROM {env['CASSANDRA_KEYSPACE']}.{events_table}",  # noqa: S608 - the tests' own names
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        )
        return int(cassandra_admin.execute(statement, timeout=60).one()[0])

    return count


@pytest.fixture
def cassandra_store_behind_a_fault_proxy(
    cassandra_contact: tuple[list[str], int], make_store_env: Callable[[], dict[str, str]]
) -> Iterator[StoreBehindAProxy]:
    """The kit's ``store_behind_a_fault_proxy`` on Cassandra: a new keyspace (prepared on
    the node directly), and the cluster's first node reached through the cookbook's fault
    proxy. The driver, given the proxy as its only contact point, sends everything through
    it: a node's own address comes into play only for the peers it finds, and the test
    node has none."""
    hosts, port = cassandra_contact
    store_env = make_store_env()
    with FaultProxy(address=(hosts[0], port)) as proxy:
        yield StoreBehindAProxy(proxy, {**store_env, "CASSANDRA_HOSTS": f"127.0.0.1:{proxy.port}"})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _node is not None:
        lines = _node.log().splitlines()[-100:]
        report.sections.append((f"Cassandra node log (last {len(lines)} lines)", "\n".join(lines)))
    return report
