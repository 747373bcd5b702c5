"""The node harness: a real Cassandra 5.0 node on loopback, from Maven's jars."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from cassandra.cluster import Session

from cassandra_testing.node import (
    CASSANDRA_VERSION,
    CassandraNode,
    NodeError,
    configured_hosts,
    machine_lock,
    resolve_classpath,
)


def test_cassandra_hosts_names_a_cluster_to_use_instead() -> None:
    assert configured_hosts({}) is None
    assert configured_hosts({"CASSANDRA_HOSTS": "10.0.0.1:9142,10.0.0.2:9142"}) == (["10.0.0.1", "10.0.0.2"], 9142)
    assert configured_hosts({"CASSANDRA_HOSTS": "db"}) == (["db"], 9042)


@pytest.mark.requires_local_node
def test_the_node_is_cassandra_5_on_loopback(cassandra_admin: Session, cassandra_node: CassandraNode | None) -> None:
    assert cassandra_node is not None
    row = cassandra_admin.execute("SELECT release_version, rpc_address, listen_address FROM system.local").one()
    assert row.release_version == CASSANDRA_VERSION
    assert str(row.rpc_address) == "127.0.0.1"
    assert str(row.listen_address) == "127.0.0.1"
    # Its data lives in the cache folder, which git ignores.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(cassandra_node.root)], cwd=cassandra_node.root.parent, check=False
    )
    assert ignored.returncode in (0, 128)  # 128: not inside a git work tree (a copied package)
    print(
        f"node: resolve {cassandra_node.resolve_seconds:.1f}s, start {cassandra_node.start_seconds:.1f}s, "
        f"RSS {cassandra_node.memory() / 2**20:.0f} MiB"
    )


@pytest.mark.requires_local_node
def test_a_warm_cache_resolves_without_maven(cassandra_cache_dir: Path, cassandra_node: CassandraNode | None) -> None:
    assert cassandra_node is not None
    started = time.monotonic()
    jars = resolve_classpath(cassandra_cache_dir)
    assert time.monotonic() - started < 1.0
    assert any(jar.name == f"cassandra-all-{CASSANDRA_VERSION}.jar" for jar in jars)


def test_a_second_ring_waits_for_the_first_and_no_longer_than_its_bound(tmp_path: Path) -> None:
    lock = tmp_path / "ring.lock"
    with machine_lock(lock, wait=1, what="the first ring"):
        started = time.monotonic()
        with pytest.raises(NodeError, match=r"held by another process for 0\.3 s"), machine_lock(lock, 0.3, "a second"):
            pass
        assert 0.3 <= time.monotonic() - started < 5
    with machine_lock(lock, wait=0.3, what="a second ring, once the first has stopped"):
        pass
