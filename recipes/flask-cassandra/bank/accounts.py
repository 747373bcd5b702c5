"""The event-sourced application on Cassandra: one per worker process.

The DataStax driver's ``Cluster`` owns threads and sockets, which a forked
process does not get in working order. So the master creates the schema with
a short-lived application that it closes (shutting its ``Cluster`` down)
before the fork, and each worker constructs its own application and connects
right after the fork, from a server hook: uWSGI's ``@postfork`` (``wsgi.py``)
or gunicorn's ``post_worker_init`` (``gunicorn.conf.py``). The worker's exit hook
closes it, which shuts its ``Cluster`` down cleanly.

Where Cassandra is, comes from the environment, which ``eventsourcing`` reads
(``CASSANDRA_HOSTS``, ``CASSANDRA_KEYSPACE``, and optionally
``CASSANDRA_USERNAME``, ``CASSANDRA_PASSWORD``, ``CASSANDRA_REPLICATION``;
see ``eventsourcing_cassandra.factory``).
"""

from __future__ import annotations

import logging

from eventsourcing.persistence import PersistenceError

from bankaccounts.application import BankAccounts
from bankaccounts.application import create_schema as create_event_store_schema
from bankaccounts.lifecycle import close_application, get_application, init_application
from bankaccounts.readiness import READY_TIMEOUT_SECONDS, ReadinessProbe
from bankaccounts.timeouts import cassandra_limits
from eventsourcing_cassandra.factory import CassandraFactory

logger = logging.getLogger(__name__)

#: Laid over the environment. Workers never change the schema: concurrent
#: schema changes are not safe in Cassandra, so ``create_schema()`` makes them
#: once, in one process, before the workers start.
EVENTSOURCING_ENV = {
    "PERSISTENCE_MODULE": "eventsourcing_cassandra",
    "CREATE_TABLE": "n",
}


def eventsourcing_env() -> dict[str, str]:
    """``EVENTSOURCING_ENV``, and no statement waiting longer than ``REQUEST_TIMEOUT``
    (unless ``CASSANDRA_REQUEST_TIMEOUT`` says otherwise)."""
    return {**EVENTSOURCING_ENV, **cassandra_limits()}


def create_schema() -> None:
    """Create the keyspace (if missing) and the tables, then disconnect.

    The short-lived application is closed before this returns, so no driver
    object with live sockets or threads is inherited by a forked worker.
    """
    create_event_store_schema(env=eventsourcing_env())


def start_worker() -> BankAccounts:
    """Construct this worker's application and open its own Cassandra session.

    Connecting here, rather than on the first request, keeps the connection
    time out of a user's request and shows a misconfiguration in the log as
    soon as the worker starts. If Cassandra cannot be reached just now, the
    worker still starts: the store connects on the next query instead.
    """
    application = init_application(env=eventsourcing_env())
    factory = application.factory
    if not isinstance(factory, CassandraFactory):
        msg = f"expected the Cassandra store, got {type(factory).__qualname__}"
        raise TypeError(msg)
    try:
        factory.datastore.session()
    except PersistenceError:
        logger.warning("cannot reach Cassandra yet; the first request will try again", exc_info=True)
    return application


def stop_worker() -> None:
    """Close this worker's application: its ``Cluster`` shuts down cleanly."""
    close_application()


def bank() -> BankAccounts:
    """This worker's application; ``start_worker()`` must have run in this process."""
    return get_application()


def ask_cassandra() -> None:
    """``/ready``'s question: this worker's session answers a trivial query."""
    factory = bank().factory
    assert isinstance(factory, CassandraFactory)
    factory.datastore.ping(READY_TIMEOUT_SECONDS)


#: Asks in a helper thread, so ``/ready`` answers within a second whatever Cassandra does.
readiness = ReadinessProbe(ask_cassandra)
