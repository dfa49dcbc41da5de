"""DELETE /api/v1/apps/{app}/environments/{env} and DELETE /api/v1/apps/{name}: what is removed
from the store and from the runtime."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shipway.deploys.lifecycle import DeploymentStatus
from shipway.store import Store
from shipway.store.tables import AuditEntry, Deployment, Environment
from tests.api.conftest import Node, app_id, release
from tests.helpers import auth, make_token

URL = "/api/v1/apps/web/environments"


def environments(node: Node) -> list[str]:
    return [e["name"] for e in node.client.get("/api/v1/apps/web").json()["environments"]]


def test_removing_a_preview(node: Node, store: Store) -> None:
    live = release(store, 1, env="feature-x")
    queued = release(store, 2, DeploymentStatus.QUEUED, env="feature-x")
    kept = release(store, 3)
    assert environments(node) == ["production", "feature-x"]

    response = node.client.delete(f"{URL}/feature-x")
    assert response.status_code == 204, response.text
    assert environments(node) == ["production"]
    with store.transaction() as session:
        assert session.scalars(select(Deployment.id)).all() == [kept]
        assert session.scalar(select(Environment).where(Environment.name == "feature-x")) is None
        audit = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    actions = [(a.action, a.subject, a.payload) for a in audit]
    assert (
        "environment.delete",
        "app:web",
        {"environment": "feature-x", "branch": "feature/feature-x"},
    ) in actions
    superseded = [a for a in audit if a.action == "deployment.superseded"]
    assert [a.subject for a in superseded] == [f"deployment:{queued}"]
    assert f"deployment:{live}" not in {a.subject for a in superseded}
    assert node.runtime.removed == [(app_id(store), "feature-x")]
    assert node.client.delete(f"{URL}/feature-x").status_code == 404


def test_production_cannot_be_removed(node: Node, store: Store) -> None:
    release(store, 1)
    response = node.client.delete(f"{URL}/production")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == "production cannot be removed; delete the app"
    assert environments(node) == ["production"]
    assert node.runtime.removed == []


@pytest.mark.parametrize(
    "name", ["nope", "Feature-X", "x" * 65, "a%00b", "%20", "feature-x%0A", "ünï"]
)
def test_unknown_environments_are_404(node: Node, store: Store, name: str) -> None:
    release(store, 1, env="feature-x")
    response = node.client.delete(f"{URL}/{name}")
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"
    assert environments(node) == ["production", "feature-x"]


def test_viewers_cannot_remove_previews_and_other_tenants_see_none(
    node: Node, store: Store
) -> None:
    release(store, 1, env="feature-x")
    viewer, deployer = (
        auth(make_token(node.client, "viewer")),
        auth(make_token(node.client, "deployer")),
    )
    other = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    refused = node.client.delete(f"{URL}/feature-x", headers=viewer)
    assert refused.status_code == 403, refused.text
    assert node.client.delete(f"{URL}/feature-x", headers=auth(other)).status_code == 404
    assert node.client.delete("/api/v1/apps/nope/environments/feature-x").status_code == 404
    assert environments(node) == ["production", "feature-x"]
    assert node.client.delete(f"{URL}/feature-x", headers=deployer).status_code == 204
    assert node.runtime.removed == [(app_id(store), "feature-x")]


def test_deleting_an_app_stops_serving_all_of_it(node: Node, store: Store) -> None:
    release(store, 1)
    web = app_id(store)
    deployer = auth(make_token(node.client, "deployer"))
    assert node.client.delete("/api/v1/apps/web", headers=deployer).status_code == 403
    assert node.runtime.removed == []
    assert node.client.delete("/api/v1/apps/web").status_code == 204
    assert node.runtime.removed == [(web, None)]
    assert node.client.get("/api/v1/apps/web").status_code == 404
    assert node.client.delete("/api/v1/apps/web").status_code == 404
