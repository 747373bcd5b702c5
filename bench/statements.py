"""How many statements one request sends to the database: each web recipe's, and its
baseline's, counted from the server's own record of the statements it ran (PostgreSQL's
statement log; on Cassandra, its audit log: ``measure_cassandra``).

Each database measured here logs every statement its sessions run (``ALTER DATABASE ...
SET log_statement = 'all'``; the others log none, so no other measurement pays for it),
and the server's log lines name their database (``log_line_prefix``). A server with one
worker is warmed up (its connections opened, its tables created, its caches filled); then
requests are sent one at a time, as the benchmark's load sends them (deposits without an
``Idempotency-Key`` into a few accounts in turn, reads of an account with a few events), and the log lines written
meanwhile are counted. Every statement counts, ``BEGIN``, ``COMMIT``, ``LOCK`` and ``SET``
included. These are statements, not round trips: a driver may send several in one
pipeline (eventsourcing's PostgreSQL recorder sends its lock, ``NOTIFY`` and insert
together). Not ``pg_stat_statements``: it counts a utility statement run again as a
prepared statement (the recorder's ``LOCK TABLE``) once only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import web
from harness import BenchError, BenchServer, Progress, Settings, open_accounts, serving
from psycopg import sql

from bankaccounts.config import DatabaseConfig
from cookbook_testing.http import HTTPClient, Response

#: The server's log lines name their database: ``%m [%p] `` is PostgreSQL's default prefix.
LOG_LINE_PREFIX = "%m [%p] %d "
#: A statement's line: a simple query's ``statement:``, an extended query's ``execute <name>:``.
STATEMENT_LINE = re.compile(r"^\S+ \S+ \S+ \[\d+\] (?P<database>\S+) LOG:  (?:statement|execute [^:]*): (?P<text>.*)$")
#: What differs from one request to the next: string literals (Django binds its parameters in
#: the client, so its statements carry their values) and Django's savepoints' names (``"s1402_x1"``).
LITERAL = re.compile(r"'(?:[^']|'')*'")
SAVEPOINT_NAME = re.compile(r'"s\d+_x\d+"')
#: Numbers as long as a key (Django binds its advisory lock's key in the SQL text).
LONG_NUMBER = re.compile(r"(?<![\w$])\d{6,}")


def server_log(admin_url: str) -> Path:
    """The embedded server's log (the wheel starts it with ``pg_ctl -l <pgdata>/log``), with
    its lines prefixed by their database from now on."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("ALTER SYSTEM SET log_line_prefix = {}").format(sql.Literal(LOG_LINE_PREFIX)))
        connection.execute("SELECT pg_reload_conf()")
        row = connection.execute("SHOW data_directory").fetchone()
    path = Path(str(row[0] if row else "")) / "log"
    if not path.is_file():
        msg = f"no server log at {path}: the statement counts read the embedded server's"
        raise BenchError(msg)
    return path


def log_statements(admin_url: str, database_url: str) -> str:
    """Log every statement of ``database_url``'s new sessions; return the database's name."""
    name = DatabaseConfig.from_url(database_url).dbname
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("ALTER DATABASE {} SET log_statement = 'all'").format(sql.Identifier(name)))
    return name


def statements_in(text: str, database: str) -> Counter[str]:
    """The statements ``database``'s sessions ran, in a stretch of the log (a statement's
    further lines, as SQLAlchemy writes them, follow its first one indented by a tab)."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line)
            continue
        match = STATEMENT_LINE.match(line)
        current = [match["text"]] if match and match["database"] == database else None
        if current is not None:
            found.append(current)
    return Counter(shape(" ".join(" ".join(lines).split())) for lines in found)


def shape(statement: str) -> str:
    """``statement`` with what differs from one request to the next elided."""
    return SAVEPOINT_NAME.sub('"s…"', LONG_NUMBER.sub("…", LITERAL.sub("'…'", statement)))


def send(client: HTTPClient, operation: str, account: str) -> Response:
    """One request as the benchmark's load sends it (bench/wrk/requests.lua)."""
    if operation == "deposit":
        return client.post(f"/accounts/{account}/deposit", json={"amount": 1})
    return client.get(f"/accounts/{account}")


#: One request in Cassandra's audit log (``FileAuditLogger``): ``|``-separated ``name:value``
#: fields, the CQL last (``operation:``); a batch's statements share a ``batch:`` id.
AUDIT_LINE = re.compile(r"\buser:[^|]*\|host:.*?\|type:(?P<type>[^|]*)\|category:(?P<category>[^|]*)\|(?P<rest>.*)$")


def audited_statements(text: str, keyspace: str) -> tuple[Counter[str], int]:
    """The CQL statements run on ``keyspace`` in a stretch of a node's log, and how many
    requests carried them (a batch, however many statements, is one request). Preparing a
    statement is not running it: ``PREPARE`` entries are left out."""
    found: Counter[str] = Counter()
    requests = 0
    batches: set[str] = set()
    for line in text.splitlines():
        match = AUDIT_LINE.search(line)
        if match is None or match["category"] == "PREPARE":
            continue
        head, _, operation = match["rest"].partition("|operation:")
        fields = dict(field.split(":", 1) for field in head.split("|") if ":" in field)
        if fields.get("ks") != keyspace:
            continue
        found[shape(" ".join((operation or match["type"]).split()))] += 1
        if "batch" in fields:
            batches.add(fields["batch"])
        else:
            requests += 1
    return found, requests + len(batches)


#: Accounts the deposits go round (each then holds a few events, as under the load, which
#: deposits into a random one of many): a store that reads an account's events in pages
#: (Cassandra's: 100 rows a page) would read more pages of one account that took them all.
DEPOSIT_ACCOUNTS = 20


def logged_while_sent(running: BenchServer, label: str, log: Path, operation: str, count: int) -> str:
    """What the database wrote to ``log`` while ``running`` answered ``count`` requests of
    ``operation`` one at a time, each a 200, after three more that warm the worker up (its
    first requests may set up what the rest reuse: connections, prepared statements). Reads
    are of an account with 5 events, as the load's; deposits go round ``DEPOSIT_ACCOUNTS``."""
    if operation == "deposit":
        accounts = open_accounts(running.client, DEPOSIT_ACCOUNTS)
    else:
        accounts = open_accounts(running.client, 1, deposits_each=4)
    for number in range(3):
        send(running.client, operation, accounts[number % len(accounts)])
    start = log.stat().st_size
    for number in range(count):
        response = send(running.client, operation, accounts[number % len(accounts)])
        if response.status != 200:
            msg = f"{label} {operation} answered {response.status}: {response.body[:300]!r}"
            raise running.failure(BenchError(msg))
    with log.open("rb") as file:
        file.seek(start)
        return file.read().decode(errors="replace")


def requests_for(settings: Settings) -> int:
    return 10 if settings.quick else 200


def measure(
    recipe: str,
    admin_url: str,
    stores: tuple[Mapping[str, str], Mapping[str, str]],
    settings: Settings,
    progress: Progress,
    workdir: Path,
) -> dict[str, Any]:
    """Statements per request of ``recipe`` and its baseline, for each of the benchmark's operations."""
    log = server_log(admin_url)
    databases = {store["DATABASE_URL"]: log_statements(admin_url, store["DATABASE_URL"]) for store in stores}

    def counted(written: str, store: Mapping[str, str], count: int) -> dict[str, Any]:
        database = databases[store["DATABASE_URL"]]
        found = statements_in(written, database)
        if not found:
            msg = f"no statement of {database} in the server's log"
            raise BenchError(msg)
        return per_request(found, count)

    server = web.servers_of(recipe)[0]
    return count_pair(recipe, server, "postgresql", stores, log, counted, settings, progress, workdir)


def measure_cassandra(
    recipe: str,
    log: Path,
    stores: tuple[Mapping[str, str], Mapping[str, str]],
    settings: Settings,
    progress: Progress,
    workdir: Path,
) -> dict[str, Any]:
    """Statements per request of a Cassandra ``recipe`` and its baseline, from the audit log
    ``log`` of the one node that serves ``stores``' keyspaces and audits them (``CassandraServer``'s
    ``audit_keyspaces``). A batch's statements count one each, and ``round_trips`` counts the
    requests that carried them."""

    def counted(written: str, store: Mapping[str, str], count: int) -> dict[str, Any]:
        keyspace = store["CASSANDRA_KEYSPACE"]
        found, requests = audited_statements(written, keyspace)
        if not found:
            msg = f"no request on keyspace {keyspace} in the node's audit log"
            raise BenchError(msg)
        return {**per_request(found, count), "round_trips": requests / count}

    return count_pair(recipe, "uwsgi", "cassandra", stores, log, counted, settings, progress, workdir)


def per_request(found: Counter[str], count: int) -> dict[str, Any]:
    """Statements per request, in all and each (the most run first), from ``count`` requests' ``found``."""
    ran = sorted(found.items(), key=lambda row: (-row[1], row[0]))
    return {
        "per_request": sum(found.values()) / count,
        "statements": [[query, calls / count] for query, calls in ran],
    }


def count_pair(
    recipe: str,
    server: str,
    store_name: str,
    stores: tuple[Mapping[str, str], Mapping[str, str]],
    log: Path,
    counted: Callable[[str, Mapping[str, str], int], dict[str, Any]],
    settings: Settings,
    progress: Progress,
    workdir: Path,
) -> dict[str, Any]:
    """``recipe`` and its baseline, each served with one worker on its store, sent each operation's
    requests while the database writes ``log``; ``counted`` reads what was written."""
    count = requests_for(settings)
    pair = web.prepared_targets(recipe, server, stores, workdir)
    result: dict[str, Any] = {"recipe": recipe, "server": server, "store": store_name, "requests": count, "roles": {}}
    for target, store in zip(pair, stores, strict=True):
        measured: dict[str, Any] = {}
        with serving(target, store, workers=1) as running:
            for operation in web.OPERATIONS:
                written = logged_while_sent(running, target.label, log, operation, count)
                try:
                    measured[operation] = counted(written, store, count)
                except BenchError as error:
                    raise running.failure(BenchError(f"{target.label} {operation}: {error}")) from None
        result["roles"][target.role] = measured
        progress.step(
            f"{target.label}: "
            + ", ".join(
                f"{operation} {numbers['per_request']:.2f}"
                + (f" ({numbers['round_trips']:.2f} requests)" if "round_trips" in numbers else "")
                for operation, numbers in measured.items()
            )
            + " statements per request"
        )
    return result
