"""/api/v1/apps over a real store, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import auth, make_token


def test_create_list_get_delete(api: TestClient) -> None:
    created = api.post("/api/v1/apps", json={"name": "web", "plan": "pro"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "web" and body["plan"] == "pro"
    assert body["url"] == "http://web.localhost:8080"
    assert [e["name"] for e in body["environments"]] == ["production"]

    assert [a["name"] for a in api.get("/api/v1/apps").json()] == ["web"]
    assert api.get("/api/v1/apps/web").json()["name"] == "web"

    assert api.delete("/api/v1/apps/web").status_code == 204
    assert api.get("/api/v1/apps/web").status_code == 404
    assert api.get("/api/v1/apps").json() == []


def test_a_duplicate_name_is_a_conflict(api: TestClient) -> None:
    assert api.post("/api/v1/apps", json={"name": "web"}).status_code == 201
    again = api.post("/api/v1/apps", json={"name": "web"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_tenants_are_isolated(api: TestClient) -> None:
    other = api.post("/api/v1/orgs", json={"name": "globex"})
    assert other.status_code == 201, other.text
    globex = auth(other.json()["owner_token"])
    assert api.post("/api/v1/apps", json={"name": "mine"}).status_code == 201

    assert api.get("/api/v1/apps", headers=globex).json() == []
    assert api.get("/api/v1/apps/mine", headers=globex).status_code == 404
    assert api.delete("/api/v1/apps/mine", headers=globex).status_code == 404
    assert api.post("/api/v1/apps", json={"name": "mine"}, headers=globex).status_code == 201
    assert [a["name"] for a in api.get("/api/v1/apps").json()] == ["mine"]


def test_viewers_read_deployers_create_owners_delete(api: TestClient) -> None:
    viewer, deployer = auth(make_token(api, "viewer")), auth(make_token(api, "deployer"))
    assert api.post("/api/v1/apps", json={"name": "v"}, headers=viewer).status_code == 403
    assert api.post("/api/v1/apps", json={"name": "d"}, headers=deployer).status_code == 201
    assert api.get("/api/v1/apps", headers=viewer).status_code == 200
    refused = api.delete("/api/v1/apps/d", headers=deployer)
    assert refused.status_code == 403
    assert "owner" in refused.json()["error"]["message"]
    assert api.get("/api/v1/apps/d").status_code == 200


def test_every_change_is_audited(api: TestClient, store) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from shipway.store.tables import AuditEntry

    api.post("/api/v1/apps", json={"name": "web"})
    api.delete("/api/v1/apps/web")
    with store.transaction() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    actions = [(r.action, r.subject) for r in rows]
    assert ("app.create", "app:web") in actions and ("app.delete", "app:web") in actions
    assert all(r.actor.startswith(("token:", "system")) for r in rows)


def test_build_network_can_be_turned_off(api: TestClient) -> None:
    assert api.post("/api/v1/apps", json={"name": "web"}).json()["build_network"] is True
    changed = api.patch("/api/v1/apps/web", json={"build_network": False})
    assert changed.status_code == 200 and changed.json()["build_network"] is False
    assert api.get("/api/v1/apps/web").json()["build_network"] is False
    assert api.patch("/api/v1/apps/web", json={"build_network": "no"}).status_code == 422
    assert api.patch("/api/v1/apps/web", json={"plan": "gold"}).status_code == 422
    assert api.patch("/api/v1/apps/nope", json={"plan": "pro"}).status_code == 404
