"""The HTTP contract as a test suite any web recipe can run.

Subclass ``HttpContract`` in a recipe's tests and provide three fixtures:

- ``api``: a ``cookbook_testing.http.Client`` (in-process, or ``HTTPClient``
  against a real server);
- ``count_events``: a callable returning how many events the store holds, read
  straight from the database, so that "a rejected request changes nothing" is
  checked where it matters;
- ``expected_store``: the store name ``/health`` must report.

The contract itself is documented in ``docs/http-contract.rst``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cookbook_testing.hostile import CASES, Case
from cookbook_testing.http import Client, Response

MAX = 10**12
ACCOUNT_FIELDS = {"id", "full_name", "email_address", "balance", "overdraft_limit", "is_closed", "version"}

BAD_AMOUNTS = [0, -1, MAX + 1, 1.5, 10.0, "10", True, False, None, [10], {"cents": 10}]
BAD_LIMITS = [-1, MAX + 1, 1.5, "0", True, None]
MALFORMED_BODIES = [b"", b"   ", b"{", b"[]", b'"text"', b"42", b"null", b"\xff\xfe", b"[" * 50_000]


def assert_error(response: Response, status: int) -> None:
    assert response.status == status, (response.status, response.body[:500])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str), body
    assert body["error"], body


def open_account(api: Client, full_name: str = "Ada Lovelace", email: str = "ada@example.com") -> dict[str, Any]:
    """A new account, opened through ``api``: its JSON."""
    response = api.post("/accounts", json={"full_name": full_name, "email_address": email})
    assert response.status == 201, (response.status, response.body[:500])
    account: dict[str, Any] = response.json
    return account


def assert_refused_commands_write_no_rows(api: Client, count_rows: Callable[[], int]) -> None:
    """Send commands that the application refuses only once it has looked (no such
    account: 404; beyond the balance: 409; a key sent again with another request:
    422), and check that ``count_rows`` (rows a recipe writes beside the events,
    such as its audit rows) is as before: a recipe that writes them before the
    command runs must have them rolled back with the refusal."""
    account = open_account(api)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert api.post(f"/accounts/{account['id']}/deposit", json={"amount": 10}, headers=key).status == 200
    before = count_rows()
    assert_error(api.post(f"/accounts/{uuid.uuid4()}/deposit", json={"amount": 10}), 404)
    assert_error(api.post(f"/accounts/{account['id']}/withdraw", json={"amount": 11}), 409)
    assert_error(
        api.post(f"/accounts/{account['id']}/transfer", json={"to_account_id": str(uuid.uuid4()), "amount": 1}), 404
    )
    assert_error(api.post(f"/accounts/{account['id']}/deposit", json={"amount": 11}, headers=key), 422)
    assert count_rows() == before


class HttpContract:
    """Every web recipe: same paths, same bodies, same status codes."""

    #: The application answers a path with a NUL (``%00``) 404: no such account. A proxy
    #: in front may refuse it first (``ContractThroughNginx``: nginx's 400, in JSON).
    nul_in_path_status = 404

    # --- helpers -----------------------------------------------------------

    open_account = staticmethod(open_account)

    @staticmethod
    def get_account(api: Client, account_id: str) -> dict[str, Any]:
        response = api.get(f"/accounts/{account_id}")
        assert response.status == 200, (response.status, response.body[:500])
        account: dict[str, Any] = response.json
        return account

    def funded_account(self, api: Client, cents: int) -> dict[str, Any]:
        account = self.open_account(api)
        response = api.post(f"/accounts/{account['id']}/deposit", json={"amount": cents})
        assert response.status == 200, response.body
        funded: dict[str, Any] = response.json
        return funded

    @contextmanager
    def nothing_changes(
        self, api: Client, count_events: Callable[[], int], *accounts: dict[str, Any]
    ) -> Iterator[None]:
        """Assert that the block writes no event and leaves the accounts as they were."""
        before_count = count_events()
        before = [self.get_account(api, account["id"]) for account in accounts]
        yield
        assert count_events() == before_count
        assert [self.get_account(api, account["id"]) for account in accounts] == before

    # --- health ------------------------------------------------------------

    def test_health(self, api: Client, expected_store: str) -> None:
        response = api.get("/health")
        assert response.status == 200
        body = response.json
        assert set(body) == {"status", "pid", "application", "store"}
        assert body["status"] == "ok"
        assert type(body["pid"]) is int
        assert body["pid"] > 0
        assert isinstance(body["application"], str)
        assert body["application"]
        assert body["store"] == expected_store

    def test_ready_when_the_store_answers(self, api: Client, expected_store: str) -> None:
        response = api.get("/ready")
        assert response.status == 200, response.body[:500]
        assert response.headers.get("content-type", "").startswith("application/json")
        assert response.json == {"status": "ready", "store": expected_store}

    # --- open and get ------------------------------------------------------

    def test_open_account(self, api: Client, count_events: Callable[[], int]) -> None:
        before = count_events()
        response = api.post("/accounts", json={"full_name": "Ada Lovelace", "email_address": "ada@example.com"})
        assert response.status == 201
        assert response.headers.get("content-type", "").startswith("application/json")
        account = response.json
        assert set(account) == ACCOUNT_FIELDS
        assert uuid.UUID(account["id"])
        assert account["full_name"] == "Ada Lovelace"
        assert account["email_address"] == "ada@example.com"
        assert account["balance"] == 0
        assert account["overdraft_limit"] == 0
        assert account["is_closed"] is False
        assert account["version"] == 1
        assert count_events() == before + 2  # the account's event, and the record of the command
        assert self.get_account(api, account["id"]) == account

    def test_open_account_at_the_length_limits(self, api: Client) -> None:
        name = "N" * 200
        email = "e" * 242 + "@example.com"
        account = self.open_account(api, full_name=name, email=email)
        assert account["full_name"] == name
        assert account["email_address"] == email
        assert len(email) == 254

    @pytest.mark.parametrize(
        "body",
        [
            {"email_address": "ada@example.com"},
            {"full_name": "", "email_address": "ada@example.com"},
            {"full_name": "   ", "email_address": "ada@example.com"},
            {"full_name": "N" * 201, "email_address": "ada@example.com"},
            {"full_name": 42, "email_address": "ada@example.com"},
            {"full_name": None, "email_address": "ada@example.com"},
            {"full_name": "Ada Lovelace"},
            {"full_name": "Ada Lovelace", "email_address": "ada.example.com"},
            {"full_name": "Ada Lovelace", "email_address": "e" * 243 + "@example.com"},
            {"full_name": "Ada Lovelace", "email_address": ["ada@example.com"]},
        ],
    )
    def test_open_account_rejects_invalid_fields(
        self, api: Client, count_events: Callable[[], int], body: dict[str, Any]
    ) -> None:
        with self.nothing_changes(api, count_events):
            assert_error(api.post("/accounts", json=body), 400)

    @pytest.mark.parametrize("raw", MALFORMED_BODIES, ids=repr)
    def test_open_account_rejects_malformed_bodies(
        self, api: Client, count_events: Callable[[], int], raw: bytes
    ) -> None:
        with self.nothing_changes(api, count_events):
            assert_error(api.post("/accounts", data=raw), 400)

    def test_get_account(self, api: Client) -> None:
        account = self.open_account(api)
        assert self.get_account(api, account["id"]) == account

    @pytest.mark.parametrize("account_id", [str(uuid.UUID(int=1)), "not-a-uuid", "1234", "%00"])
    def test_get_unknown_or_malformed_account_is_404(self, api: Client, account_id: str) -> None:
        assert_error(api.get(f"/accounts/{account_id}"), self.nul_in_path_status if "%00" in account_id else 404)

    # --- deposit and withdraw ---------------------------------------------

    def test_deposit(self, api: Client, count_events: Callable[[], int]) -> None:
        account = self.open_account(api)
        before = count_events()
        response = api.post(f"/accounts/{account['id']}/deposit", json={"amount": 1250})
        assert response.status == 200
        assert response.json == {**account, "balance": 1250, "version": 2}
        assert count_events() == before + 2  # the account's event, and the record of the command
        response = api.post(f"/accounts/{account['id']}/deposit", json={"amount": MAX})
        assert response.status == 200
        assert response.json["balance"] == MAX + 1250
        assert self.get_account(api, account["id"]) == response.json

    @pytest.mark.parametrize("action", ["deposit", "withdraw"])
    @pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
    def test_bad_amounts_are_400(
        self, api: Client, count_events: Callable[[], int], action: str, amount: object
    ) -> None:
        account = self.funded_account(api, 100)
        with self.nothing_changes(api, count_events, account):
            assert_error(api.post(f"/accounts/{account['id']}/{action}", json={"amount": amount}), 400)

    @pytest.mark.parametrize("action", ["deposit", "withdraw", "transfer", "overdraft-limit"])
    @pytest.mark.parametrize("raw", [*MALFORMED_BODIES, b"{}"], ids=repr)
    def test_malformed_or_empty_bodies_are_400(
        self, api: Client, count_events: Callable[[], int], action: str, raw: bytes
    ) -> None:
        account = self.funded_account(api, 100)
        with self.nothing_changes(api, count_events, account):
            assert_error(api.post(f"/accounts/{account['id']}/{action}", data=raw), 400)

    @pytest.mark.parametrize("action", ["deposit", "withdraw", "overdraft-limit", "close"])
    def test_actions_on_unknown_accounts_are_404(
        self, api: Client, count_events: Callable[[], int], action: str
    ) -> None:
        body = {"limit": 10} if action == "overdraft-limit" else {"amount": 10}
        with self.nothing_changes(api, count_events):
            assert_error(api.post(f"/accounts/{uuid.uuid4()}/{action}", json=body), 404)
            assert_error(api.post(f"/accounts/not-a-uuid/{action}", json=body), 404)

    def test_withdraw(self, api: Client) -> None:
        account = self.funded_account(api, 1000)
        response = api.post(f"/accounts/{account['id']}/withdraw", json={"amount": 400})
        assert response.status == 200
        assert response.json == {**account, "balance": 600, "version": account["version"] + 1}

    def test_withdraw_beyond_balance_is_409(self, api: Client, count_events: Callable[[], int]) -> None:
        account = self.funded_account(api, 1000)
        with self.nothing_changes(api, count_events, account):
            assert_error(api.post(f"/accounts/{account['id']}/withdraw", json={"amount": 1001}), 409)

    def test_overdraft_limit(self, api: Client, count_events: Callable[[], int]) -> None:
        account = self.funded_account(api, 100)
        response = api.post(f"/accounts/{account['id']}/overdraft-limit", json={"limit": 500})
        assert response.status == 200
        assert response.json["overdraft_limit"] == 500
        response = api.post(f"/accounts/{account['id']}/withdraw", json={"amount": 600})
        assert response.status == 200
        assert response.json["balance"] == -500
        with self.nothing_changes(api, count_events, account):
            assert_error(api.post(f"/accounts/{account['id']}/withdraw", json={"amount": 1}), 409)
        for limit in (0, MAX):
            response = api.post(f"/accounts/{account['id']}/overdraft-limit", json={"limit": limit})
            assert response.status == 200
            assert response.json["overdraft_limit"] == limit

    @pytest.mark.parametrize("limit", BAD_LIMITS, ids=repr)
    def test_bad_overdraft_limits_are_400(self, api: Client, count_events: Callable[[], int], limit: object) -> None:
        account = self.open_account(api)
        with self.nothing_changes(api, count_events, account):
            assert_error(api.post(f"/accounts/{account['id']}/overdraft-limit", json={"limit": limit}), 400)

    # --- transfer -----------------------------------------------------------

    def test_transfer(self, api: Client, count_events: Callable[[], int]) -> None:
        source = self.funded_account(api, 1000)
        destination = self.open_account(api, "Grace Hopper", "grace@example.com")
        before = count_events()
        response = api.post(
            f"/accounts/{source['id']}/transfer", json={"to_account_id": destination["id"], "amount": 300}
        )
        assert response.status == 200
        assert response.json == {**source, "balance": 700, "version": source["version"] + 1}
        assert self.get_account(api, destination["id"]) == {
            **destination,
            "balance": 300,
            "version": destination["version"] + 1,
        }
        assert count_events() == before + 3  # one event per account, and the record of the command

    @pytest.mark.parametrize(
        "body",
        [
            {"amount": 10},
            {"to_account_id": "not-a-uuid", "amount": 10},
            {"to_account_id": 42, "amount": 10},
            {"to_account_id": None, "amount": 10},
            {"to_account_id": "SOURCE", "amount": 10},
            {"to_account_id": "DESTINATION"},
            {"to_account_id": "DESTINATION", "amount": 0},
            {"to_account_id": "DESTINATION", "amount": MAX + 1},
            {"to_account_id": "DESTINATION", "amount": True},
            {"to_account_id": "DESTINATION", "amount": "10"},
        ],
    )
    def test_bad_transfers_are_400(self, api: Client, count_events: Callable[[], int], body: dict[str, Any]) -> None:
        source = self.funded_account(api, 1000)
        destination = self.open_account(api, "Grace Hopper", "grace@example.com")
        names = {"SOURCE": source["id"], "DESTINATION": destination["id"]}
        body = {key: names.get(value, value) if isinstance(value, str) else value for key, value in body.items()}
        with self.nothing_changes(api, count_events, source, destination):
            assert_error(api.post(f"/accounts/{source['id']}/transfer", json=body), 400)

    def test_transfer_with_an_unknown_account_is_404(self, api: Client, count_events: Callable[[], int]) -> None:
        account = self.funded_account(api, 1000)
        with self.nothing_changes(api, count_events, account):
            response = api.post(
                f"/accounts/{account['id']}/transfer", json={"to_account_id": str(uuid.uuid4()), "amount": 10}
            )
            assert_error(response, 404)
            response = api.post(
                f"/accounts/{uuid.uuid4()}/transfer", json={"to_account_id": account["id"], "amount": 10}
            )
            assert_error(response, 404)

    def test_transfer_beyond_balance_is_409(self, api: Client, count_events: Callable[[], int]) -> None:
        source = self.funded_account(api, 100)
        destination = self.open_account(api, "Grace Hopper", "grace@example.com")
        with self.nothing_changes(api, count_events, source, destination):
            response = api.post(
                f"/accounts/{source['id']}/transfer", json={"to_account_id": destination["id"], "amount": 101}
            )
            assert_error(response, 409)

    # --- close --------------------------------------------------------------

    def test_close(self, api: Client, count_events: Callable[[], int]) -> None:
        account = self.funded_account(api, 100)
        other = self.funded_account(api, 100)
        response = api.post(f"/accounts/{account['id']}/close")
        assert response.status == 200
        assert response.json == {**account, "is_closed": True, "version": account["version"] + 1}
        closed = response.json
        with self.nothing_changes(api, count_events, closed, other):
            for action in ("deposit", "withdraw"):
                assert_error(api.post(f"/accounts/{account['id']}/{action}", json={"amount": 10}), 409)
            assert_error(api.post(f"/accounts/{account['id']}/overdraft-limit", json={"limit": 10}), 409)
            response = api.post(
                f"/accounts/{account['id']}/transfer", json={"to_account_id": other["id"], "amount": 10}
            )
            assert_error(response, 409)
            response = api.post(
                f"/accounts/{other['id']}/transfer", json={"to_account_id": account["id"], "amount": 10}
            )
            assert_error(response, 409)
            assert_error(api.post(f"/accounts/{account['id']}/close"), 409)

    # --- idempotency keys ----------------------------------------------------

    @staticmethod
    def keyed(key: str) -> dict[str, str]:
        return {"Idempotency-Key": key}

    def test_a_write_sent_again_with_its_key_is_applied_once(
        self, api: Client, count_events: Callable[[], int]
    ) -> None:
        key = str(uuid.uuid4())
        details = {"full_name": "Ada", "email_address": "ada@example.com"}
        before = count_events()
        opened = [api.post("/accounts", json=details, headers=self.keyed(f"open-{key}")) for _ in range(2)]
        assert [response.status for response in opened] == [201, 201], [response.body for response in opened]
        account = opened[0].json
        assert opened[1].json == account
        assert count_events() == before + 2  # one account
        other = self.open_account(api)
        writes = [
            ("deposit", {"amount": 100}),
            ("withdraw", {"amount": 30}),
            ("transfer", {"to_account_id": other["id"], "amount": 20}),
            ("overdraft-limit", {"limit": 500}),
            ("close", None),
        ]
        before = count_events()
        for action, body in writes:
            path, headers = f"/accounts/{account['id']}/{action}", self.keyed(f"{action}-{key}")
            # The client sent it three times: it lost the answers, or it was impatient.
            answers = [api.post(path, json=body, headers=headers) for _ in range(3)]
            assert [answer.status for answer in answers] == [200] * 3, [answer.body[:300] for answer in answers]
            assert answers[0].json == answers[1].json == answers[2].json
        assert count_events() == before + 6 + 5  # each write's events once (a transfer has two), its record once
        final = self.get_account(api, account["id"])
        assert (final["balance"], final["overdraft_limit"], final["is_closed"]) == (50, 500, True)
        assert self.get_account(api, other["id"])["balance"] == 20

    def test_the_same_key_for_another_request_is_422_and_changes_nothing(
        self, api: Client, count_events: Callable[[], int]
    ) -> None:
        account, other = self.funded_account(api, 100), self.open_account(api)
        key = self.keyed(str(uuid.uuid4()))
        assert api.post(f"/accounts/{account['id']}/deposit", json={"amount": 10}, headers=key).status == 200
        deposited = self.get_account(api, account["id"])
        with self.nothing_changes(api, count_events, deposited, other):
            for path, body in [
                (f"/accounts/{account['id']}/deposit", {"amount": 11}),  # another amount
                (f"/accounts/{other['id']}/deposit", {"amount": 10}),  # another account
                (f"/accounts/{account['id']}/withdraw", {"amount": 10}),  # another command
                ("/accounts", {"full_name": "Ada", "email_address": "ada@example.com"}),
            ]:
                assert_error(api.post(path, json=body, headers=key), 422)

    @pytest.mark.parametrize("key", ["two words", "caf\u00e9", "k" * 256])
    def test_a_malformed_key_is_400_and_changes_nothing(
        self, api: Client, count_events: Callable[[], int], key: str
    ) -> None:
        account = self.open_account(api)
        with self.nothing_changes(api, count_events, account):
            response = api.post(
                f"/accounts/{account['id']}/deposit", json={"amount": 10}, headers={"Idempotency-Key": key}
            )
            assert_error(response, 400)
            assert "Idempotency-Key" in response.json["error"]

    # --- methods and paths -------------------------------------------------

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/health"),
            ("POST", "/ready"),
            ("GET", "/accounts"),
            ("DELETE", "/accounts"),
            ("PUT", "/accounts/ID"),
            ("DELETE", "/accounts/ID"),
            ("POST", "/accounts/ID"),
            ("GET", "/accounts/ID/deposit"),
            ("GET", "/accounts/ID/withdraw"),
            ("GET", "/accounts/ID/transfer"),
            ("PUT", "/accounts/ID/overdraft-limit"),
            ("GET", "/accounts/ID/close"),
        ],
    )
    def test_wrong_method_is_405(self, api: Client, count_events: Callable[[], int], method: str, path: str) -> None:
        account = self.open_account(api)
        with self.nothing_changes(api, count_events, account):
            assert_error(api.request(method, path.replace("ID", account["id"])), 405)

    @pytest.mark.parametrize("path", ["/", "/nothing-here", "/accounts/ID/nothing-here", "/health/extra"])
    def test_unknown_path_is_404(self, api: Client, path: str) -> None:
        account = self.open_account(api)
        assert_error(api.get(path.replace("ID", account["id"])), 404)

    @pytest.mark.parametrize("path", ["/health", "/ready", "/accounts/ID", f"/accounts/{uuid.UUID(int=1)}"])
    def test_head_is_the_get_without_its_body(self, api: Client, path: str) -> None:
        path = path.replace("ID", self.open_account(api)["id"])
        get, head = api.get(path), api.request("HEAD", path)
        assert (head.status, head.body) == (get.status, b"")
        assert head.headers.get("content-type") == get.headers.get("content-type")
        if path != "/health" and "content-length" in head.headers:  # /health's pid is of any length
            assert head.headers["content-length"] == get.headers.get("content-length", str(len(get.body)))

    # --- hostile input -----------------------------------------------------

    @pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
    def test_a_hostile_request_is_refused_and_changes_nothing(
        self, api: Client, count_events: Callable[[], int], case: Case
    ) -> None:
        account = self.open_account(api)
        other = self.open_account(api, "Grace Hopper", "grace@example.com")
        path = case.path.replace("{id}", account["id"]).replace("{other}", other["id"])
        with self.nothing_changes(api, count_events, account, other):
            response = api.send(case.method, path, case.body, dict(case.headers))
        status = self.nul_in_path_status if "%00" in case.path else case.status
        if case.method == "HEAD":
            assert (response.status, response.body) == (status, b"")
        else:
            assert_error(response, status)

    @pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", 'Application/JSON; charset="UTF-8"'])
    def test_json_in_any_spelling_of_its_media_type_is_read(self, api: Client, content_type: str) -> None:
        account = self.open_account(api)
        path, body = f"/accounts/{account['id']}/deposit", b'{"amount": 5}'
        response = api.send("POST", path, body, {"Content-Type": content_type})
        assert (response.status, response.json["balance"]) == (200, 5)

    @pytest.mark.parametrize("full_name", ["Zoë Ødegård", "李小龙", "عائشة", "\U0001f600 Ada", "Ada\u200dLovelace"])
    def test_names_in_any_script_are_kept_as_sent(self, api: Client, full_name: str) -> None:
        account = self.open_account(api, full_name=full_name)
        assert self.get_account(api, account["id"])["full_name"] == full_name

    @pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000", "LOCALHOST."])
    def test_the_loopback_names_are_allowed_hosts_by_default(self, api: Client, host: str) -> None:
        assert api.send("GET", "/health", None, {"Host": host}).status == 200
