"""A Cassandra node as a service of its own, for ``cookbook.py`` (``serve`` for
the Cassandra recipes, and ``test``'s node for the whole matrix)::

    python -m cassandra_testing.service CACHE_FOLDER

Maven's jars are resolved into ``CACHE_FOLDER`` (about 95 MB the first time).
It prints one JSON line once the node answers queries (``hosts``, ``pid``,
``log``), then waits: closing its standard input, or SIGTERM, stops the node
and deletes its data (``cookbook_testing.services``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cassandra_testing.node import CassandraNode
from cookbook_testing.services import serve_until_stdin_closes

#: Seconds the node gets to answer, once its jars are resolved.
START_TIMEOUT = 300.0


@contextmanager
def cassandra_node(cache: Path) -> Iterator[dict[str, Any]]:
    node = CassandraNode(cache, start_timeout=START_TIMEOUT, quick_start=True)
    try:
        node.start()
        hosts = ",".join(f"{host}:{node.port}" for host in node.hosts)
        yield {"hosts": hosts, "pid": node.pid, "log": str(node.log_path)}
    finally:
        node.stop()  # not the node's own with block: a start cut short must delete its folder too


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cassandra_testing.service")
    parser.add_argument("cache", type=Path, help="where Maven's jars are kept (and the node's folder, while it runs)")
    args = parser.parse_args(argv)
    serve_until_stdin_closes(cassandra_node(args.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
