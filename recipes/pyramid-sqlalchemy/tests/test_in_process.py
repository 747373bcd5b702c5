"""The HTTP contract, in-process, through WebTest."""

from __future__ import annotations

from webtest import TestApp

from cookbook_testing.contract import HttpContract


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the Pyramid app in this process."""


def test_the_application_is_constructed_once_per_process(testapp: TestApp) -> None:
    ids = {testapp.get("/health").json["application"] for _ in range(5)}
    assert len(ids) == 1
