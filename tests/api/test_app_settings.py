"""PATCH /api/v1/apps/{name}: sleep and health-check settings; app URLs of every tenant."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shipway.store import Store
from shipway.store.tables import AuditEntry
from tests.api.conftest import release
from tests.helpers import auth, make_token

URL = "/api/v1/apps/web"
SETTINGS = ("idle_timeout", "health_path", "health_timeout")


@pytest.fixture
def web(api: TestClient) -> TestClient:
    assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
    return api


def settings_of(api: TestClient) -> tuple[Any, ...]:
    app = api.get(URL).json()
    return tuple(app[k] for k in SETTINGS)


def test_defaults_then_changes_then_sleeping_off(web: TestClient, store: Store) -> None:
    assert settings_of(web) == (None, "/", 30)
    changed = web.patch(URL, json={"idle_timeout": 300, "health_path": "/up?deep=1"})
    assert changed.status_code == 200, changed.text
    assert tuple(changed.json()[k] for k in SETTINGS) == (300, "/up?deep=1", 30)
    assert web.patch(URL, json={"health_timeout": 120}).json()["idle_timeout"] == 300
    assert settings_of(web) == (300, "/up?deep=1", 120)
    assert web.patch(URL, json={"idle_timeout": None}).status_code == 200
    assert settings_of(web) == (None, "/up?deep=1", 120)
    assert web.patch(URL, json={"health_path": None, "health_timeout": None}).status_code == 200
    assert settings_of(web) == (None, "/up?deep=1", 120)
    with store.transaction() as session:
        updates = session.scalars(
            select(AuditEntry.payload)
            .where(AuditEntry.action == "app.update")
            .order_by(AuditEntry.id)
        ).all()
    assert updates == [
        {"idle_timeout": 300, "health_path": "/up?deep=1"},
        {"health_timeout": 120},
        {"idle_timeout": None},
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"idle_timeout": 9}, "idle_timeout must be 10-86400 seconds, or null to never sleep"),
        ({"idle_timeout": 86401}, "idle_timeout must be 10-86400 seconds"),
        ({"idle_timeout": -1}, "idle_timeout must be"),
        ({"idle_timeout": 0}, "idle_timeout must be"),
        ({"idle_timeout": "300"}, "idle_timeout: Input should be a valid integer"),
        ({"idle_timeout": 1.5}, "idle_timeout: Input should be a valid integer"),
        ({"idle_timeout": True}, "idle_timeout: Input should be a valid integer"),
        ({"health_path": "up"}, "health_path must be a path starting with '/'"),
        ({"health_path": ""}, "health_path must be"),
        ({"health_path": "/a b"}, "health_path must be"),
        ({"health_path": "/\n"}, "health_path must be"),
        ({"health_path": "/up\u0000"}, "health_path must be"),
        ({"health_path": "/ünï"}, "health_path must be"),
        ({"health_path": "/" + "a" * 255}, "at most 255"),
        ({"health_path": 7}, "health_path: Input should be a valid string"),
        ({"health_timeout": 0}, "health_timeout must be 1-600 seconds; got 0"),
        ({"health_timeout": 601}, "health_timeout must be 1-600 seconds"),
        ({"health_timeout": "30"}, "health_timeout: Input should be a valid integer"),
        ({"health_timeout": 30, "health": 1}, "health: Extra inputs are not permitted"),
    ],
)
def test_bad_settings_get_422_naming_the_field(
    web: TestClient, store: Store, body: dict[str, Any], message: str
) -> None:
    web.patch(URL, json={"idle_timeout": 60})
    response = web.patch(URL, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and message in error["message"], error
    assert settings_of(web) == (60, "/", 30)


def test_viewers_cannot_change_settings(web: TestClient) -> None:
    viewer = auth(make_token(web, "viewer"))
    refused = web.patch(URL, json={"idle_timeout": 60}, headers=viewer)
    assert refused.status_code == 403
    assert settings_of(web) == (None, "/", 30)


def test_other_tenants_get_their_organization_in_app_hosts(api: TestClient, store: Store) -> None:
    assert api.post("/api/v1/apps", json={"name": "web"}).json()["url"] == (
        "http://web.localhost:8080"
    )
    globex = auth(api.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"])
    created = api.post("/api/v1/apps", json={"name": "web"}, headers=globex).json()
    assert created["url"] == "http://web.globex.localhost:8080"
    listed = api.get("/api/v1/apps", headers=globex).json()
    assert [a["url"] for a in listed] == ["http://web.globex.localhost:8080"]
    deployments = api.get("/api/v1/apps/web/deployments").json()
    assert deployments == []
    release(store, 1, env="feature-x")  # the admin organization's "web"
    env_urls = {e["name"]: e["url"] for e in api.get(URL).json()["environments"]}
    assert env_urls == {
        "production": "http://web.localhost:8080",
        "feature-x": "http://web--feature-x.localhost:8080",
    }
    assert api.get("/api/v1/apps/web/deployments").json()[0]["url"] == (
        "http://web--feature-x.localhost:8080"
    )
