"""The event store's settings: ``CASSANDRA_*`` from the environment, checked when Django starts.

They become the environment of the event-sourced application
(``PERSISTENCE_MODULE=eventsourcing_cassandra``), which reads them when it is
constructed, in each worker. Checking them here, in the settings, means a
typo stops ``manage.py check`` and the server's master at start-up, instead of
every worker at its first request.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from eventsourcing.persistence import InfrastructureFactoryError

from bankaccounts.timeouts import cassandra_limits
from config.environment import env_str
from eventsourcing_cassandra.factory import parse_hosts

DEFAULT_HOSTS = "127.0.0.1:9042"
# eventsourcing_cassandra's own default: an unset CASSANDRA_KEYSPACE means the same
# keyspace here as wherever else the store is used.
DEFAULT_KEYSPACE = "eventsourcing"


def cassandra_settings() -> dict[str, str]:
    """The application's environment for the Cassandra event store."""
    hosts = env_str("CASSANDRA_HOSTS", DEFAULT_HOSTS)
    try:
        parse_hosts(hosts)
    except InfrastructureFactoryError as error:
        raise ImproperlyConfigured(str(error)) from None
    keyspace = env_str("CASSANDRA_KEYSPACE", DEFAULT_KEYSPACE)
    # CQL identifiers unquoted: the store interpolates the keyspace into its statements.
    if not (keyspace[0].isalpha() and keyspace.replace("_", "").isalnum() and keyspace.isascii()):
        msg = f"CASSANDRA_KEYSPACE must be letters, digits and underscores, starting with a letter, not {keyspace!r}"
        raise ImproperlyConfigured(msg)
    settings = {
        "PERSISTENCE_MODULE": "eventsourcing_cassandra",
        "CASSANDRA_HOSTS": hosts,
        "CASSANDRA_KEYSPACE": keyspace,
        # Workers never change the schema: concurrent schema changes are not
        # safe in Cassandra. `python manage.py create_event_store` creates it
        # once, before the servers start.
        "CREATE_TABLE": "n",
        # No statement waits longer than REQUEST_TIMEOUT (unless CASSANDRA_REQUEST_TIMEOUT says).
        **cassandra_limits(),
    }
    # Optional: unset means the store's own default (no authentication;
    # SimpleStrategy with one replica, for a keyspace it creates).
    for name in ("CASSANDRA_USERNAME", "CASSANDRA_PASSWORD", "CASSANDRA_REPLICATION"):
        if value := env_str(name):
            settings[name] = value
    if "CASSANDRA_USERNAME" in settings and "CASSANDRA_PASSWORD" not in settings:
        msg = "CASSANDRA_USERNAME is set but CASSANDRA_PASSWORD is not"
        raise ImproperlyConfigured(msg)
    return settings
