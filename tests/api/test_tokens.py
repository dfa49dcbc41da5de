"""/api/v1/tokens: create, list, revoke, expiry."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from shipway.store import Store
from shipway.store.tables import ApiToken
from shipway.store.types import utcnow
from tests.helpers import auth, make_token


def test_create_list_revoke(api: TestClient) -> None:
    made = api.post("/api/v1/tokens", json={"name": "ci", "role": "viewer", "expires_in": 3600})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["token"].startswith("swt_") and body["expires_at"] is not None
    listed = api.get("/api/v1/tokens").json()
    assert body["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)

    assert api.get("/api/v1/apps", headers=auth(body["token"])).status_code == 200
    revoked = api.delete(f"/api/v1/tokens/{body['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = api.get("/api/v1/apps", headers=auth(body["token"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "token has been revoked"


def test_an_expired_token_is_refused(api: TestClient, store: Store) -> None:
    secret = make_token(api, "deployer", expires_in=60)
    with store.transaction() as session:
        session.execute(
            update(ApiToken)
            .values(expires_at=utcnow() - timedelta(seconds=1))
            .where(ApiToken.name == "deployer-token")
        )
    refused = api.get("/api/v1/apps", headers=auth(secret))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "token has expired"


def test_only_owners_manage_tokens(api: TestClient) -> None:
    deployer = auth(make_token(api, "deployer"))
    assert api.get("/api/v1/tokens", headers=deployer).status_code == 403
    made = api.post("/api/v1/tokens", json={"name": "x", "role": "viewer"}, headers=deployer)
    assert made.status_code == 403


def test_revoking_another_tenants_token_is_not_found(api: TestClient) -> None:
    other = api.post("/api/v1/orgs", json={"name": "globex"}).json()
    globex = auth(other["owner_token"])
    mine = api.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}).json()
    assert api.delete(f"/api/v1/tokens/{mine['id']}", headers=globex).status_code == 404
    assert api.get("/api/v1/apps", headers=auth(mine["token"])).status_code == 200


def test_whoami(api: TestClient) -> None:
    me = api.get("/api/v1/whoami").json()
    assert me["organization"] == "default" and me["role"] == "owner"


def test_a_login_answers_as_whoami_and_is_recorded(api: TestClient) -> None:
    viewer = make_token(api, "viewer")
    me = api.post("/api/v1/login", headers=auth(viewer)).json()
    assert me["role"] == "viewer" and me["actor"].startswith("token:")
    [entry] = api.get("/api/v1/audit/entries", params={"action": "login"}).json()["items"]
    assert entry["actor"] == me["actor"] and entry["text"] == f"{me['actor']} logged in"
    assert api.post("/api/v1/login", headers=auth("swt_wrong")).status_code == 401


def test_only_platform_owners_create_organizations(api: TestClient) -> None:
    other = api.post("/api/v1/orgs", json={"name": "globex"}).json()
    refused = api.post("/api/v1/orgs", json={"name": "initech"}, headers=auth(other["owner_token"]))
    assert refused.status_code == 403
    assert [
        o["name"] for o in api.get("/api/v1/orgs", headers=auth(other["owner_token"])).json()
    ] == ["globex"]
