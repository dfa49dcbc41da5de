"""GET /api/v1/apps/{name}/info: URLs, live releases, formation and instances of one app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shipway.deploys.lifecycle import DeploymentStatus
from shipway.store import Store
from tests.api.conftest import Node, release
from tests.helpers import auth, make_token

URL = "/api/v1/apps/web/info"


def test_an_app_without_releases(node: Node) -> None:
    info = node.client.get(URL)
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["app"]["name"] == "web" and body["app"]["url"] == "http://web.localhost:8080"
    assert body["formation"] == {}
    assert body["environments"] == [
        {
            "name": "production",
            "kind": "production",
            "branch": None,
            "url": "http://web.localhost:8080",
            "release": None,
            "state": "stopped",
            "instances": [],
        }
    ]


def test_live_releases_and_what_the_runtime_runs(node: Node, store: Store) -> None:
    release(store, 1)
    release(store, 2, description="Set DEBUG", processes={"web": "a", "worker": "b"})
    release(store, 3, DeploymentStatus.FAILED)
    release(store, 4, env="feature-x")
    node.client.patch("/api/v1/apps/web/formation", json={"web": 2})
    web1 = {"name": "web.1", "state": "healthy", "restarts": 0, "uptime": 12.5, "command": "a"}
    web2 = {**web1, "name": "web.2", "state": "crashed", "restarts": 3, "uptime": None}
    node.runtime.running = [
        {
            "environment": "production",
            "host": "web.localhost",
            "release": 2,
            "state": "running",
            "instances": [web1, web2],
        }
    ]
    body = node.client.get(URL).json()
    assert body["formation"] == {"web": 2, "worker": 1}
    production, preview = body["environments"]
    assert production["release"]["version"] == 2
    assert production["release"]["description"] == "Set DEBUG"
    assert production["state"] == "running" and production["instances"] == [web1, web2]
    assert (
        preview["name"] == "feature-x" and preview["url"] == "http://web--feature-x.localhost:8080"
    )
    assert preview["release"]["version"] == 4
    assert preview["state"] == "stopped" and preview["instances"] == []


def test_without_a_runtime_the_state_is_unknown(api: TestClient, store: Store) -> None:
    api.post("/api/v1/apps", json={"name": "web"})
    release(store, 1)
    env = api.get(URL).json()["environments"][0]
    assert env["release"]["version"] == 1
    assert env["state"] is None and env["instances"] == []


def test_viewers_read_it_other_tenants_and_unknown_apps_get_404(node: Node) -> None:
    viewer = auth(make_token(node.client, "viewer"))
    assert node.client.get(URL, headers=viewer).status_code == 200
    other = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    for response in (
        node.client.get(URL, headers=auth(other)),
        node.client.get("/api/v1/apps/nope/info"),
        node.client.get("/api/v1/apps/a%00b/info"),
        node.client.get(f"/api/v1/apps/{'x' * 5000}/info"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"


def test_tenant_hosts_carry_the_organization(node: Node, store: Store) -> None:
    globex = auth(node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"])
    assert (
        node.client.post("/api/v1/apps", json={"name": "shop"}, headers=globex).status_code == 201
    )
    info = node.client.get("/api/v1/apps/shop/info", headers=globex).json()
    assert info["app"]["url"] == "http://shop.globex.localhost:8080"
    assert info["environments"][0]["url"] == "http://shop.globex.localhost:8080"
