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
