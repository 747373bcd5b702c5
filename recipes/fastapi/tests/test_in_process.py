"""In-process tests: the FastAPI app through Starlette's TestClient, lifespan and all."""

from __future__ import annotations

from fastapi.testclient import TestClient

from asgi import app
from bankaccounts.lifecycle import slot
from cookbook_testing.contract import HttpContract, assert_error
from cookbook_testing.http import Client


class TestContract(HttpContract):
    """The shared HTTP contract suite, against the app in this process."""


def test_405_names_the_allowed_methods(api: Client) -> None:
    response = api.request("DELETE", "/health")
    assert_error(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_a_validation_error_is_400_not_fastapis_422(api: Client) -> None:
    response = api.post("/accounts", json={"full_name": "Ada", "email_address": 7})
    assert_error(response, 400)
    assert response.json["error"].startswith("email_address: ")


def test_the_openapi_page_documents_the_request_bodies(api: Client) -> None:
    schema = api.get("/openapi.json").json
    body = schema["paths"]["/accounts/{account_id}/deposit"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["properties"]["amount"]["type"] == "integer"
    assert "Idempotency-Key" in {parameter["name"] for parameter in schema["paths"]["/accounts"]["post"]["parameters"]}
    assert api.get("/docs").status == 200


def test_the_lifespan_constructs_the_application_and_closes_it(database_url: str) -> None:
    assert not slot.is_initialised  # importing asgi.py built nothing
    with TestClient(app, base_url="http://localhost") as client:
        assert slot.is_initialised
        assert client.get("/health").status_code == 200
    assert not slot.is_initialised


def test_a_head_over_8_kib_is_refused_unread(api: Client) -> None:
    """What gunicorn and uWSGI refuse themselves, and uvicorn would read (bank_api.HeadSizeLimit)."""
    assert_error(api.request("GET", "/health", headers={"X-Padding": "a" * 9000}), 431)
    assert_error(api.get("/accounts/" + "a" * 9000), 414)
