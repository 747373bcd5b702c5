"""The fault proxy against a real PostgreSQL server: each fault does what it says."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from cookbook_testing.faults import FaultProxy

pytestmark = pytest.mark.requires_postgresql


@pytest.fixture
def proxy(database_url: str) -> Iterator[FaultProxy]:
    with psycopg.connect(database_url, autocommit=True) as direct:
        direct.execute("CREATE TABLE notes (id int PRIMARY KEY)")
    with FaultProxy(database_url) as running:
        yield running


def count_notes(database_url: str) -> int:
    with psycopg.connect(database_url) as direct:
        row = direct.execute("SELECT count(*) FROM notes").fetchone()
        assert row is not None  # count(*) answers one row
        return int(row[0])


def test_it_forwards_everything_by_default(proxy: FaultProxy) -> None:
    with psycopg.connect(proxy.url) as connection:
        connection.execute("INSERT INTO notes VALUES (1)")
    assert count_notes(proxy.upstream_url) == 1


def test_a_lost_commit_reply_leaves_the_commit_done_and_the_client_in_the_dark(proxy: FaultProxy) -> None:
    proxy.lose_next_commit_reply()
    connection = psycopg.connect(proxy.url)
    connection.execute("INSERT INTO notes VALUES (1)")
    with pytest.raises(psycopg.OperationalError):
        connection.commit()
    connection.close()
    assert proxy.commits_lost == 1
    assert count_notes(proxy.upstream_url) == 1, "the server committed"
    with psycopg.connect(proxy.url) as again:  # the next commit is answered
        again.execute("INSERT INTO notes VALUES (2)")
    assert count_notes(proxy.upstream_url) == 2


def test_a_frozen_server_answers_nothing_until_it_thaws(proxy: FaultProxy) -> None:
    connection = psycopg.connect(proxy.url, autocommit=True)
    proxy.freeze()
    answered = threading.Event()

    def query() -> None:
        connection.execute("SELECT 1")
        answered.set()

    thread = threading.Thread(target=query)
    thread.start()
    assert not answered.wait(0.5), "a frozen server answered"
    proxy.thaw()
    assert answered.wait(30)
    thread.join(30)
    connection.close()


def test_a_server_that_is_down_cuts_connections_and_refuses_new_ones_until_it_is_back(proxy: FaultProxy) -> None:
    connection = psycopg.connect(proxy.url, autocommit=True)
    proxy.go_down()
    with pytest.raises(psycopg.OperationalError):
        connection.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(proxy.url, connect_timeout=5)
    proxy.come_back()
    with psycopg.connect(proxy.url, connect_timeout=5) as again:
        assert again.execute("SELECT 1").fetchone() == (1,)
