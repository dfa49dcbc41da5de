"""/api/v1/apps/{app}/releases and /rollback: deploying an earlier release again."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from shipway.deploys.lifecycle import DeploymentStatus
from shipway.store import Store
from shipway.store.tables import AuditEntry, Deployment, Release
from tests.api.conftest import Node, release
from tests.helpers import auth, make_token

URL = "/api/v1/apps/web/rollback"


def counts(store: Store) -> tuple[int, int]:
    with store.transaction() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(t)) or 0)
            for t in (Release, Deployment)
        )


def test_a_rollback_deploys_the_release_live_before_as_a_new_one(node: Node, store: Store) -> None:
    release(store, 1)
    release(store, 2)
    response = node.client.post(URL)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["release"] == 3 and body["description"] == "Rollback to v1"
    assert body["status"] == "queued" and body["environment"] == "production"
    assert body["source"] == "rollback" and body["url"] == "http://web.localhost:8080"
    assert node.temporal.started == ["deploy/web/production"]
    assert node.client.get(f"/api/v1/deployments/{body['id']}").json()["release"] == 3
    with store.transaction() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "rollback")).one()
        assert audit.subject == "app:web"
        assert audit.payload == {"to": 1, "release": 3, "deployment": body["id"]}
    listed = node.client.get("/api/v1/apps/web/releases").json()
    assert [(r["version"], r["description"]) for r in listed] == [
        (3, "Rollback to v1"),
        (2, "Deploy v2"),
        (1, "Deploy v1"),
    ]


def test_a_rollback_to_a_named_version(node: Node, store: Store) -> None:
    for version in (1, 2, 3):
        release(store, version)
    response = node.client.post(URL, json={"to": 2})
    assert response.status_code == 202, response.text
    assert response.json()["release"] == 4 and response.json()["description"] == "Rollback to v2"
    assert node.client.post(URL, json={}).json()["description"] == "Rollback to v2"


@pytest.mark.parametrize(
    ("setup", "body", "status", "message"),
    [
        ([], None, 422, "web has no live release to roll back from"),
        ([1], None, 422, "web has no earlier release that went live"),
        (
            [1, ("failed", 2), 3],
            None,
            202,
            "",
        ),
        ([1, 2], {"to": 9}, 404, "web has no release v9"),
        ([1, 2], {"to": 0}, 422, "to: Input should be greater than or equal to 1"),
        ([1, 2], {"to": -1}, 422, "greater than or equal to 1"),
        ([1, 2], {"to": 2**31}, 422, "less than or equal to"),
        ([1, 2], {"to": "1"}, 422, "to: Input should be a valid integer"),
        ([1, 2], {"to": "v1"}, 422, "valid integer"),
        ([1, 2], {"to": 1.5}, 422, "valid integer"),
        ([1, 2], {"to": True}, 422, "valid integer"),
        ([1, 2], {"to": 1, "from": 2}, 422, "from: Extra inputs are not permitted"),
        ([1, 2], [1], 422, "valid dictionary"),
    ],
)
def test_bad_rollbacks_get_a_clear_4xx_and_change_nothing(
    node: Node, store: Store, setup: list[Any], body: Any, status: int, message: str
) -> None:
    for step in setup:
        if isinstance(step, tuple):
            release(store, step[1], DeploymentStatus(step[0]))
        else:
            release(store, step)
    before = counts(store)
    response = node.client.post(URL, json=body) if body is not None else node.client.post(URL)
    assert response.status_code == status, response.text
    if status == 202:  # v2 never went live: the rollback skips it
        assert response.json()["description"] == "Rollback to v1"
        return
    assert message in response.json()["error"]["message"], response.json()
    assert counts(store) == before
    assert node.temporal.started == []


def test_malformed_json_gets_422(node: Node, store: Store) -> None:
    release(store, 1)
    release(store, 2)
    response = node.client.post(
        URL, content=b'{"to": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid"


def test_viewers_cannot_roll_back_and_other_tenants_see_nothing(node: Node, store: Store) -> None:
    release(store, 1)
    release(store, 2)
    viewer = auth(make_token(node.client, "viewer"))
    refused = node.client.post(URL, headers=viewer)
    assert refused.status_code == 403 and "deployer" in refused.json()["error"]["message"]
    other = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    assert node.client.post(URL, headers=auth(other)).status_code == 404
    assert node.client.post("/api/v1/apps/nope/rollback").status_code == 404
    assert node.temporal.started == []


def test_without_temporal_the_rollback_fails_with_503(api: TestClient, store: Store) -> None:
    api.post("/api/v1/apps", json={"name": "web"})
    release(store, 1)
    release(store, 2)
    response = api.post(URL)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    newest = api.get("/api/v1/apps/web/deployments").json()[0]
    assert newest["status"] == "failed" and "cannot start" in newest["reason"]
