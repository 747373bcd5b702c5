"""Every test here runs against a real Cassandra node (see ``cassandra_testing.plugin``)."""

pytest_plugins = ["cassandra_testing.plugin"]
