"""Copy a keyspace's log from its first version into buckets::

    python -m eventsourcing_cassandra.migrate --hosts 127.0.0.1:9042 --keyspace eventsourcing

The first version of this store kept each application's log in one partition of
``application_log``; the log now lives in ``log_buckets`` (``datastore``). Stop
every process that writes to the keyspace, run this once, then start them with
this version: until it has run, ``create_tables`` refuses a keyspace that has an
``application_log`` (so a recipe's schema step says so, rather than starting an
empty log beside the old one). Running it again copies the same rows again.

What moves: each notification into the bucket of its id; each bucket's ``head``
(the last id in it; the newest's, the log's head); the tracking positions into
the newest bucket; the transaction decisions into ``LEGACY_BUCKET``, where readers
look for the decision of a row written before the log had buckets. The old
table stays, for you to drop once the new version runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from eventsourcing import persistence

from eventsourcing_cassandra.datastore import FIRST_VERSION_LOG, MIGRATED, CassandraDatastore
from eventsourcing_cassandra.factory import parse_hosts
from eventsourcing_cassandra.recorders import KIND_DECISION, KIND_NOTIFICATION, KIND_TRACKING, LEGACY_BUCKET


def migrate(datastore: CassandraDatastore) -> dict[str, int]:
    """Copy every application's log; return the number of notifications copied for each."""
    datastore.create_tables(check_first_version=False)
    copied: dict[str, int] = {}
    if not datastore.has_table(FIRST_VERSION_LOG):
        return copied
    session, keyspace = datastore.session(), datastore.keyspace
    size = datastore.bucket_size()
    applications = [
        row.application_name
        for row in session.execute(f"SELECT DISTINCT application_name FROM {keyspace}.application_log")  # noqa: S608
    ]
    for application in applications:
        copied[application] = _copy(datastore, application, size)
    datastore.record_setting(MIGRATED, 1)
    return copied


def _copy(datastore: CassandraDatastore, application: str, size: int) -> int:
    keyspace = datastore.keyspace
    session = datastore.session()
    rows = session.execute(
        f"SELECT * FROM {keyspace}.application_log WHERE application_name = %s",  # noqa: S608 - a checked name
        (application,),
    )
    notification = datastore.prepare(
        "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, originator_id, "
        "originator_version, topic, state, txid) VALUES (?, ?, 0, ?, '', ?, ?, ?, ?, ?)"
    )
    decision = datastore.prepare(
        "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, status, first_id, count) "
        "VALUES (?, ?, 1, 0, ?, ?, ?, ?)"
    )
    tracking = datastore.prepare(
        "INSERT INTO {keyspace}.log_buckets (application_name, bucket, kind, position, key, tracking_id) "
        "VALUES (?, ?, 2, 0, ?, ?)"
    )
    head_of = datastore.prepare("UPDATE {keyspace}.log_buckets SET head = ? WHERE application_name = ? AND bucket = ?")
    head: int | None = None
    bucket_heads: dict[int, int] = {}
    positions: list[tuple[str, int]] = []
    count = 0
    for row in rows:
        head = max(head or 0, row.head or 0, row.position if row.kind == KIND_NOTIFICATION else 0)
        if row.kind == KIND_NOTIFICATION:
            bucket = row.position // size
            session.execute(
                notification,
                (
                    application,
                    bucket,
                    row.position,
                    row.originator_id,
                    row.originator_version,
                    row.topic,
                    row.state,
                    row.txid,
                ),
            )
            bucket_heads[bucket] = max(bucket_heads.get(bucket, 0), row.position)
            count += 1
        elif row.kind == KIND_DECISION:
            session.execute(decision, (application, LEGACY_BUCKET, row.key, row.status, row.first_id, row.count))
        elif row.kind == KIND_TRACKING:
            positions.append((row.key, row.tracking_id))
    newest = max(bucket_heads, default=0)
    bucket_heads[newest] = head or 0  # the log's head (0: tracking positions, and no notification yet)
    for bucket, last in bucket_heads.items():
        session.execute(head_of, (last, application, bucket))
    for upstream, tracking_id in positions:
        session.execute(tracking, (application, newest, upstream, tracking_id))
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eventsourcing_cassandra.migrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--hosts", default="127.0.0.1:9042", help="host[:port],host[:port] (CASSANDRA_HOSTS)")
    parser.add_argument("--keyspace", required=True)
    args = parser.parse_args(argv)
    hosts, port = parse_hosts(args.hosts)
    datastore = CassandraDatastore(  # credentials as the store takes them: from the environment
        hosts=hosts,
        port=port,
        keyspace=args.keyspace,
        username=os.environ.get("CASSANDRA_USERNAME", ""),
        password=os.environ.get("CASSANDRA_PASSWORD", ""),
    )
    try:
        copied = migrate(datastore)
    except persistence.PersistenceError as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 1
    finally:
        datastore.close()
    for application, count in copied.items():
        print(f"{application}: {count} notifications copied into buckets")
    if not copied:
        print(f"{args.keyspace} has no application_log: nothing to copy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
