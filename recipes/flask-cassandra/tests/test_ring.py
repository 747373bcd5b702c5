"""This recipe's uWSGI (4 workers) on a ring of three Cassandra nodes, under load: a node
lost and brought back, then two nodes lost (``tox -e flask-cassandra-ring``)."""

from __future__ import annotations

from cassandra_testing.ring_checks import RingChecks


class TestOnARing(RingChecks):
    pass
