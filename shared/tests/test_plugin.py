"""The test kit's own promises: under CI=true a skip fails the run."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPPING_TEST = """
import pytest

def test_needs_a_service():
    pytest.skip("the service is not running")
"""


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_skip_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(SKIPPING_TEST)
    result = pytester.runpytest_inprocess("-p", "cookbook_testing.plugin")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(["*skipped under CI=true, which counts as a failure*"])


def test_an_unknown_store_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOKBOOK_TEST_STORE", "mysql")
    pytester.makepyfile("def test_store(test_store): pass")
    result = pytester.runpytest_inprocess("-p", "cookbook_testing.plugin")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*COOKBOOK_TEST_STORE must be one of*"])


@pytest.mark.parametrize(
    ("line", "is_a_request"),
    [
        ("[pid: 17914|app: 0|req: 67/299] 127.0.0.1 () {26 vars in 389 bytes} POST /accounts", True),
        ('127.0.0.1 - - [01/Dec/2026:23:46:31 +0000] "POST /accounts HTTP/1.1" 200 165 "-" "-"', True),
        ("Wed Dec  2 00:02:46 2026 - graceful shutdown triggered...", False),
        ('[2026-12-03 02:48:38 +0000] 127.0.0.1 - "POST /accounts HTTP/1.1" 201 2.452', True),
        ("[2026-12-01 23:46:31 +0000] [123] [INFO] Booting worker with pid: 123", False),
        ("[WARNING] Killing worker-4 after it refused to gracefully stop", False),
        ("2026-12-02 00:02:45,875 [3214] bankaccounts.lifecycle INFO: constructed application", False),
    ],
)
def test_a_failed_test_s_server_log_leaves_out_request_lines(line: str, is_a_request: bool) -> None:
    """What the server did at the end (a shutdown, a worker that died) is what a failure needs."""
    from cookbook_testing.plugin import REQUEST_LINE

    assert bool(REQUEST_LINE.match(line)) is is_a_request


MARKED_TESTS = """
import pytest

@pytest.mark.requires_postgresql
def test_postgresql_only(): pass

@pytest.mark.requires_a_database_server
def test_a_server_fault(): pass

def test_anywhere(test_store): pass
"""


@pytest.mark.parametrize(
    ("ini", "env_store", "kept"),
    [
        ("", "sqlite", ["test_anywhere"]),
        ("", "postgresql", ["test_postgresql_only", "test_a_server_fault", "test_anywhere"]),
        # A recipe's own store wins over the environment's.
        ("cookbook_store = cassandra", "postgresql", ["test_a_server_fault", "test_anywhere"]),
    ],
)
def test_marked_tests_run_only_on_stores_they_fit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, env_store: str, kept: list[str]
) -> None:
    monkeypatch.setenv("COOKBOOK_TEST_STORE", env_store)
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(MARKED_TESTS)
    result = pytester.runpytest_inprocess("-p", "cookbook_testing.plugin", "--collect-only", "-q")
    collected = [line.rsplit("::", 1)[1] for line in result.stdout.lines if "::" in line]
    assert collected == kept


STORE_AND_OTHER_TESTS = """
import pytest

@pytest.fixture
def database(test_store):
    return test_store

@pytest.mark.topology
def test_behind_nginx(): pass

def test_through_a_fixture(database): pass

def test_of_the_domain_alone(): pass
"""


@pytest.mark.parametrize(
    ("store", "kept"),
    [
        ("sqlite", ["test_through_a_fixture", "test_of_the_domain_alone"]),
        ("postgresql", ["test_behind_nginx", "test_through_a_fixture", "test_of_the_domain_alone"]),
    ],
)
@pytest.mark.parametrize("store_tests_only", [False, True])
def test_a_second_store_runs_only_the_tests_the_store_can_change(
    pytester: pytest.Pytester, store: str, kept: list[str], store_tests_only: bool
) -> None:
    """``--store-tests-only``: a test that reaches no store, through any fixture, is left out."""
    pytester.makepyfile(STORE_AND_OTHER_TESTS)
    options = ["--store-tests-only"] if store_tests_only else []
    result = pytester.runpytest_inprocess(
        "-p", "cookbook_testing.plugin", "--store", store, *options, "--collect-only", "-q"
    )
    collected = [line.rsplit("::", 1)[1] for line in result.stdout.lines if "::" in line]
    assert collected == [name for name in kept if not (store_tests_only and name == "test_of_the_domain_alone")]
