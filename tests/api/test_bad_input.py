"""Bad input gets a clear 4xx in the documented shape, never a 500, and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shipway.api.routing import Route
from shipway.store import Store
from shipway.store.tables import ApiToken, App, AuditEntry
from tests.helpers import auth, every_route, make_token

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
    assert_error(api.delete("/api/v1/tokens/0"), 422, "invalid", "token_id")
    assert_error(api.delete("/api/v1/tokens/99999999999999999999999"), 422, "invalid", "token_id")


def test_unknown_routes_and_methods_use_the_error_shape(api: TestClient) -> None:
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(api.put("/api/v1/apps"), 405, "method_not_allowed")


def test_openapi_is_served_without_a_500(api: TestClient) -> None:
    spec = api.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert "/api/v1/apps" in spec.json()["paths"]


def raw_post(api: TestClient, path: str, raw: str, method: str = "POST") -> Any:
    """Send RAW as the JSON body, exactly as written (escapes included)."""
    return api.request(method, path, content=raw, headers={"Content-Type": "application/json"})


ENTRY = '{"sequence": "%s", "actor": "svc", "action": "flag.toggled", "subject": "flag:1"%s}'


def audit_entry(extra: str = "") -> str:
    return ENTRY % (uuid.uuid4(), extra)


@pytest.mark.parametrize(
    ("method", "path", "raw", "field"),
    [
        ("POST", "/api/v1/apps", '{"name": "\\ud800"}', "name"),
        ("POST", "/api/v1/apps", '{"name": "ok", "plan": "x\\udfffy"}', "plan"),
        ("POST", "/api/v1/tokens", '{"name": "\\udc00t"}', "name"),
        ("POST", "/api/v1/orgs", '{"name": "\\ud800"}', "name"),
        ("PATCH", "/api/v1/apps/web/env", '{"set": {"K": "\\ud800"}}', "set.K"),
        ("PATCH", "/api/v1/apps/web/env", '{"set": {"\\ud800": "v"}}', "set.\\ud800"),
        ("POST", "/api/v1/functions/f", '{"source": "\\ud800", "runtime": "js"}', "source"),
        (
            "POST",
            "/api/v1/audit/entries",
            audit_entry(', "payload": {"a": ["\\ud800"]}'),
            "payload.a[0]",
        ),
        (
            "POST",
            "/api/v1/audit/entries",
            "[" + audit_entry(', "actor": "\\udbff"') + "]",
            "[0].actor",
        ),
    ],
)
def test_a_lone_surrogate_gets_422_naming_the_field(
    api: TestClient, store: Store, method: str, path: str, raw: str, field: str
) -> None:
    assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
    before = snapshot(store)
    response = raw_post(api, path, raw, method)
    assert_error(response, 422, "invalid", f"{field}: holds a lone UTF-16 surrogate")
    assert response.json()["error"]["details"] == {"field": field}
    assert snapshot(store) == before


def test_input_echoed_in_an_error_can_always_be_sent(api: TestClient) -> None:
    """Errors that quote the input quote it escaped, so the answer is always valid JSON."""
    response = api.get("/api/v1/apps/caf\u00e9-\U0001f600")
    assert_error(response, 404, "not_found", "caf\u00e9-\U0001f600")


HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/builds/{HUGE}"),
        ("POST", f"/api/v1/builds/{HUGE}/cancel"),
        ("GET", f"/api/v1/builds/{HUGE}/logs"),
        ("GET", f"/api/v1/deployments/{HUGE}"),
        ("GET", f"/api/v1/runs/{HUGE}"),
        ("GET", f"/api/v1/runs/{HUGE}/logs"),
        ("DELETE", f"/api/v1/tokens/{HUGE}"),
        ("GET", f"/api/v1/builder/builds/{HUGE}/standing"),
        ("GET", f"/api/v1/builder/builds/{HUGE}/source"),
        ("GET", f"/api/v1/builder/builds/{HUGE}/log"),
        ("GET", f"/api/v1/builder/apps/{HUGE}/config"),
        ("GET", "/api/v1/builds/2147483648"),
        ("GET", "/api/v1/builds/0"),
        ("GET", "/api/v1/builds/-1"),
    ],
)
def test_an_id_beyond_range_in_a_path_gets_422(
    api: TestClient, store: Store, method: str, path: str
) -> None:
    before = snapshot(store)
    response = api.request(method, path)
    assert_error(response, 422, "invalid", "_id: Input should be")
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("method", "path", "raw", "message"),
    [
        (
            "POST",
            "/api/v1/tokens",
            f'{{"name": "t", "expires_in": {HUGE}}}',
            "expires_in: the integer is beyond 64 bits",
        ),
        (
            "POST",
            "/api/v1/tokens",
            '{"name": "t", "expires_in": 1099511627776}',
            "expires_in: Input should be less",
        ),
        (
            "POST",
            "/api/v1/tokens",
            f'{{"name": "t", "expires_in": -{HUGE}}}',
            "expires_in: the integer is beyond 64 bits",
        ),
        ("PATCH", "/api/v1/apps/web", f'{{"idle_timeout": {HUGE}}}', "idle_timeout: the integer"),
        (
            "PATCH",
            "/api/v1/apps/web",
            '{"health_timeout": 9223372036854775807}',
            "health_timeout: Input should be",
        ),
        ("PATCH", "/api/v1/apps/web/formation", f'{{"web": {HUGE}}}', "web: the integer"),
        ("POST", "/api/v1/apps/web/rollback", f'{{"to": {HUGE}}}', "to: the integer"),
        (
            "POST",
            "/api/v1/functions/f",
            f'{{"source": "x", "timeout": {HUGE}}}',
            "timeout: the integer",
        ),
        (
            "POST",
            "/api/v1/functions/f",
            '{"source": "x", "memory_mb": 4294967296}',
            "memory_mb: Input should be",
        ),
        ("POST", "/api/v1/functions/f/rollback", '{"to": 4294967296}', "to: Input should be"),
        (
            "POST",
            "/api/v1/builder/builds/1/begin",
            '{"deployment_id": 4294967296, "attempt": "a", "builder": "b"}',
            "deployment_id: Input should be",
        ),
        (
            "POST",
            "/api/v1/builder/builds/1/log",
            '{"lines": [[4294967296, "x"]]}',
            "lines.0.0: Input should be",
        ),
        (
            "POST",
            "/api/v1/audit/entries",
            audit_entry(f', "payload": {{"n": {HUGE}}}'),
            "payload.n: the integer is beyond 64 bits",
        ),
    ],
)
def test_an_integer_beyond_range_in_a_body_gets_422(
    api: TestClient, store: Store, method: str, path: str, raw: str, message: str
) -> None:
    assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
    before = snapshot(store)
    assert_error(raw_post(api, path, raw, method), 422, "invalid", message)
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("path", "query", "headers"),
    [
        ("/api/v1/apps/web/releases", {"limit": HUGE}, {}),
        ("/api/v1/audit/entries", {"limit": HUGE}, {}),
        ("/api/v1/audit/tail", {}, {"Last-Event-ID": HUGE}),
        ("/api/v1/audit/tail", {}, {"Last-Event-ID": b"\xb2"}),
        ("/api/v1/apps/web/logs", {"tail": HUGE}, {}),
        ("/api/v1/apps/web/logs", {}, {"Last-Event-ID": HUGE}),
        ("/api/v1/audit/entries", {"where": f'{{"op": "=", "path": ["n"], "value": {HUGE}}}'}, {}),
    ],
)
def test_an_integer_beyond_range_in_a_query_or_header_gets_422(
    api: TestClient, store: Store, path: str, query: dict[str, str], headers: dict[str, Any]
) -> None:
    assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
    before = snapshot(store)
    assert_error(api.get(path, params=query, headers=headers), 422, "invalid")
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "spec",
    [
        "R99999999999999999999999/2026-01-01T00:00:00Z/PT1M",
        "R/2026-01-01T00:00:00Z/PT99999999999999999999999M",
        "R/2026-01-01T00:00:00Z/P99999999999999999999999M",
    ],
)
def test_a_schedule_beyond_range_gets_422(api: TestClient, store: Store, spec: str) -> None:
    before = snapshot(store)
    body = {
        "source": "function handler(event) { return 1 }",
        "runtime": "js",
        "triggers": {"t": {"spec": spec}},
    }
    response = api.post("/api/v1/functions/f", json=body)
    assert_error(response, 422, "invalid", "ISO-8601 interval")
    assert snapshot(store) == before
    assert api.get("/api/v1/functions").json() == []


def nested(levels: int) -> str:
    """JSON text of an object LEVELS deep."""
    return '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)


@pytest.mark.parametrize("levels", [65, 300, 100_000])
def test_an_audit_entry_nested_too_deeply_gets_422_and_is_not_stored(
    api: TestClient, store: Store, levels: int
) -> None:
    before = snapshot(store)
    too_deep = audit_entry(f', "payload": {nested(levels - 1)}')  # the entry is one level
    response = raw_post(api, "/api/v1/audit/entries", too_deep)
    assert_error(response, 422, "invalid", "nested more than 64 levels deep")
    assert response.json()["error"]["details"] == {"limit": 64}
    assert snapshot(store) == before
    assert api.get("/api/v1/audit/entries").status_code == 200


def test_an_audit_entry_at_the_depth_limit_is_stored_and_searched(
    api: TestClient, store: Store
) -> None:
    deepest = audit_entry(f', "payload": {nested(63)}')
    assert raw_post(api, "/api/v1/audit/entries", deepest).json() == {"stored": 1, "duplicates": 0}
    found = api.get("/api/v1/audit/entries", params={"action": "flag.toggled"})
    assert found.status_code == 200, found.text
    assert len(found.json()["items"]) == 1


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        ("POST", "/api/v1/apps", '{"name": "web", "plan": ' + nested(64) + "}"),
        (
            "POST",
            "/api/v1/functions/f",
            '{"source": "x", "triggers": {"t": {"spec": "@daily", "params": ' + nested(62) + "}}}",
        ),
        (
            "POST",
            "/api/v1/functions:apply",
            '{"functions": [{"name": "f", "source": "x", '
            + '"triggers": {"t": {"spec": "@daily", "params": '
            + nested(60)
            + "}}}]}",
        ),
        ("GET", "/api/v1/audit/entries?where=" + nested(65), ""),
    ],
)
def test_any_body_nested_too_deeply_gets_422_naming_the_limit(
    api: TestClient, store: Store, method: str, path: str, raw: str
) -> None:
    before = snapshot(store)
    response = raw_post(api, path, raw, method)
    assert_error(response, 422, "invalid", "nested more than 64 levels deep (the limit is 64)")
    assert snapshot(store) == before


def test_every_route_reads_json_through_jsontext(api: TestClient) -> None:
    """Every route of the API; the dashboard's pages read forms, not JSON."""
    app = api.app.routes.app  # type: ignore[attr-defined]  # inside the body limit
    routes = [
        r
        for r in every_route(app.router.routes)
        if isinstance(r, APIRoute) and r.endpoint.__module__.startswith("shipway.api.")
    ]
    assert len(routes) > 50 and all(isinstance(r, Route) for r in routes)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/api/v1/apps", "GET, POST"),
        ("PUT", "/api/v1/apps", "GET, POST"),
        ("OPTIONS", "/api/v1/apps/web/connection", "DELETE, GET, PUT"),
    ],
)
def test_a_method_not_allowed_names_every_allowed_one(
    api: TestClient, method: str, path: str, allow: str
) -> None:
    response = api.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allow
