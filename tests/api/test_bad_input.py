"""Bad input gets a clear 4xx in the documented shape, never a 500, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shipway.store import Store
from shipway.store.tables import ApiToken, App, AuditEntry
from tests.helpers import auth, make_token

MIB = 1024 * 1024


def snapshot(store: Store) -> tuple[int, ...]:
    with store.transaction() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (App, AuditEntry, ApiToken)
        )


def assert_error(response: Any, status: int, code: str, message_part: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert message_part in error["message"]


@pytest.mark.parametrize(
    "name",
    ["", "Web", "my_app", "-web", "web-", "x" * 41, "a.b", "a b", "web--pr-1", "ünï"],
)
def test_bad_app_names_get_422_stating_the_rule(api: TestClient, store: Store, name: str) -> None:
    before = snapshot(store)
    response = api.post("/api/v1/apps", json={"name": name})
    assert_error(response, 422, "invalid", "lowercase DNS label of 1-40 characters")
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "body",
    [{"name": 42}, {"name": None}, {}, {"name": "ok", "plan": "gold"}, {"name": "ok", "x": 1}, []],
)
def test_wrongly_typed_bodies_get_422(api: TestClient, store: Store, body: Any) -> None:
    before = snapshot(store)
    assert_error(api.post("/api/v1/apps", json=body), 422, "invalid")
    assert snapshot(store) == before


@pytest.mark.parametrize("raw", [b"{", b'{"name": "web",}', b"not json", b"\xff\xfe"])
def test_malformed_json_gets_422(api: TestClient, store: Store, raw: bytes) -> None:
    before = snapshot(store)
    response = api.post("/api/v1/apps", content=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid")
    assert snapshot(store) == before


def test_unknown_app_is_404(api: TestClient, store: Store) -> None:
    before = snapshot(store)
    assert_error(api.get("/api/v1/apps/nope"), 404, "not_found", "no app named 'nope'")
    assert_error(api.delete("/api/v1/apps/nope"), 404, "not_found")
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer swt_not-a-real-token"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "swt_" + "a" * 500},
    ],
)
def test_missing_or_invalid_tokens_get_401(api: TestClient, store: Store, headers: Any) -> None:
    before = snapshot(store)
    api.headers.pop("Authorization")
    for method, path in [
        ("GET", "/api/v1/apps"),
        ("POST", "/api/v1/apps"),
        ("GET", "/api/v1/tokens"),
        ("DELETE", "/api/v1/apps/x"),
    ]:
        response = api.request(method, path, headers=headers, json={"name": "sneaky"})
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert snapshot(store) == before


def test_wrong_role_gets_403_and_changes_nothing(api: TestClient, store: Store) -> None:
    viewer = auth(make_token(api, "viewer"))
    before = snapshot(store)
    assert_error(
        api.post("/api/v1/apps", json={"name": "web"}, headers=viewer), 403, "forbidden", "deployer"
    )
    assert_error(api.post("/api/v1/tokens", json={"name": "t"}, headers=viewer), 403, "forbidden")
    assert snapshot(store) == before


def test_a_body_over_1_mib_gets_413(api: TestClient, store: Store) -> None:
    before = snapshot(store)
    big = b'{"name": "' + b"a" * (MIB + 10) + b'"}'
    response = api.post("/api/v1/apps", content=big, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "payload_too_large", "1 MiB")
    assert snapshot(store) == before


def test_a_chunked_body_over_1_mib_gets_413(api: TestClient, store: Store) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(17):
            yield b"a" * 65536
        yield b'"}'

    before = snapshot(store)
    response = api.post(
        "/api/v1/apps", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    assert snapshot(store) == before


def test_a_body_just_under_the_limit_is_read(api: TestClient) -> None:
    body = b'{"name": "' + b"a" * (MIB - 100) + b'"}'
    response = api.post("/api/v1/apps", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid", "DNS label")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "t", "role": "admin"},
        {"name": "t", "expires_in": 0},
        {"name": "t", "expires_in": -5},
        {"name": "t", "expires_in": "soon"},
        {"name": ""},
        {"name": "x" * 65},
    ],
)
def test_bad_token_requests_get_422(api: TestClient, store: Store, body: Any) -> None:
    before = snapshot(store)
    assert_error(api.post("/api/v1/tokens", json=body), 422, "invalid")
    assert snapshot(store) == before


def test_bad_token_ids_get_4xx(api: TestClient) -> None:
    assert_error(api.delete("/api/v1/tokens/abc"), 422, "invalid")
    assert_error(api.delete("/api/v1/tokens/999999"), 404, "not_found")
    assert_error(api.delete("/api/v1/tokens/99999999999999999999999"), 404, "not_found")


def test_unknown_routes_and_methods_use_the_error_shape(api: TestClient) -> None:
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(api.put("/api/v1/apps"), 405, "method_not_allowed")


def test_openapi_is_served_without_a_500(api: TestClient) -> None:
    spec = api.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert "/api/v1/apps" in spec.json()["paths"]
