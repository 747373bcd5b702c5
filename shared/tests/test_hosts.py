"""ALLOWED_HOSTS: the same knob, default and matching as Django's, for every recipe."""

from __future__ import annotations

import pytest

from bankaccounts.hosts import DEFAULT_ALLOWED_HOSTS, allowed_hosts, host_is_allowed, wsgi_host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, list(DEFAULT_ALLOWED_HOSTS)),
        ("", list(DEFAULT_ALLOWED_HOSTS)),
        (" , ", list(DEFAULT_ALLOWED_HOSTS)),
        ("bank.example.com", ["bank.example.com"]),
        (" bank.example.com , .example.org,", ["bank.example.com", ".example.org"]),
    ],
)
def test_allowed_hosts_from_the_environment(value: str | None, expected: list[str]) -> None:
    assert allowed_hosts({} if value is None else {"ALLOWED_HOSTS": value}) == expected


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("127.0.0.2", False),
        ("", False),
        (None, False),
        ("local host", False),
        ("localhost:80:80", False),
        ("localhost/x", False),
        ("user@localhost", False),
    ],
)
def test_the_default_allows_the_loopback_names_only(host: str | None, allowed: bool) -> None:
    assert host_is_allowed(host, DEFAULT_ALLOWED_HOSTS) is allowed


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("example.com", True),
        ("bank.example.com:443", True),
        ("a.b.example.com", True),
        ("badexample.com", False),
        ("example.com.evil", False),
    ],
)
def test_a_leading_dot_allows_a_domain_and_its_subdomains(host: str, allowed: bool) -> None:
    assert host_is_allowed(host, [".example.com"]) is allowed


def test_a_star_allows_any_well_formed_host() -> None:
    assert host_is_allowed("anything.example:1", ["*"])
    assert not host_is_allowed("not a host", ["*"])


def test_a_wsgi_request_without_a_host_header_names_the_server() -> None:
    assert wsgi_host({"HTTP_HOST": "bank.example.com", "SERVER_NAME": "127.0.0.1"}) == "bank.example.com"
    assert wsgi_host({"SERVER_NAME": "127.0.0.1"}) == "127.0.0.1"
    assert wsgi_host({"HTTP_HOST": "", "SERVER_NAME": "127.0.0.1"}) == ""
