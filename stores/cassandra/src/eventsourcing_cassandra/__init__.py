"""An ``eventsourcing`` 9.5 persistence module for Apache Cassandra.

``PERSISTENCE_MODULE=eventsourcing_cassandra``; see ``eventsourcing_cassandra.factory``
for the settings and ``eventsourcing_cassandra.recorders`` for how writes are made atomic.
"""

from eventsourcing_cassandra.factory import CassandraFactory

__all__ = ["CassandraFactory"]
