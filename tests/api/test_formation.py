"""/api/v1/apps/{app}/formation: scale process types; bad names and counts get 422."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from shipway.runtime.instance import InstanceFailed
from shipway.store import Store
from shipway.store.tables import App, AuditEntry
from tests.api.conftest import Node, app_id, release
from tests.helpers import auth, make_token

URL = "/api/v1/apps/web/formation"


def stored(store: Store) -> dict[str, int]:
    with store.transaction() as session:
        return dict(session.scalars(select(App.formation).where(App.name == "web")).one())


def scales(store: Store) -> list[tuple[str, dict[str, Any]]]:
    with store.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "scale").order_by(AuditEntry.id)
        ).all()
        return [(r.subject, r.payload) for r in rows]


def test_a_new_app_has_no_process_types(node: Node) -> None:
    assert node.client.get(URL).json() == {}


def test_the_live_releases_types_run_one_instance_until_scaled(node: Node, store: Store) -> None:
    release(store, 1, processes={"web": "gunicorn app:app", "worker": "python worker.py"})
    assert node.client.get(URL).json() == {"web": 1, "worker": 1}
    assert node.client.patch(URL, json={"worker": 0}).json() == {"web": 1, "worker": 0}
    assert node.client.patch(URL, json={"clock": 2}).json() == {"web": 1, "worker": 0, "clock": 2}


def test_scaling_merges_stores_audits_and_restarts_the_live_generations(
    node: Node, store: Store
) -> None:
    first = node.client.patch(URL, json={"web": 3, "worker": 1})
    assert first.status_code == 200, first.text
    assert first.json() == {"web": 3, "worker": 1}
    second = node.client.patch(URL, json={"worker": 0})
    assert second.json() == {"web": 3, "worker": 0}
    assert stored(store) == {"web": 3, "worker": 0}
    assert node.client.get(URL).json() == {"web": 3, "worker": 0}
    assert scales(store) == [
        ("app:web", {"web": 3, "worker": 1}),
        ("app:web", {"worker": 0}),
    ]
    web = app_id(store)
    assert node.runtime.scaled == [(web, {"web": 3, "worker": 1}), (web, {"web": 3, "worker": 0})]


def test_a_scale_whose_instances_fail_keeps_the_formation_that_runs(
    node: Node, store: Store
) -> None:
    assert node.client.patch(URL, json={"web": 2}).status_code == 200
    node.runtime.scale_fails = InstanceFailed("web.3 failed to start: exited with code 1")
    failed = node.client.patch(URL, json={"web": 3})
    assert failed.status_code == 400
    assert failed.json()["error"]["code"] == "instance_failed"
    assert "web.3 failed to start" in failed.json()["error"]["message"]
    assert stored(store) == {"web": 2}
    with store.transaction() as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.like("scale%"))
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["scale", "scale", "scale.reverted"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"Web": 1}, "'Web'"),
        ({"1web": 1}, "'1web'"),
        ({"": 1}, "''"),
        ({"w" * 31: 1}, "'" + "w" * 31 + "'"),
        ({"web\n": 1}, "'web\\n'"),
        ({"we b": 1}, "'we b'"),
        ({"wéb": 1}, "'wéb'"),
        ({"web": -1}, "web: the count must be a whole number from 0 to 20; got -1"),
        ({"web": 21}, "web: the count must be a whole number from 0 to 20; got 21"),
        ({"web": 1.5}, "web: the count"),
        ({"web": "3"}, "web: the count"),
        ({"web": True}, "web: the count"),
        ({"web": None}, "web: the count"),
        ({"web": [1]}, "web: the count"),
        ({"web": 10**30}, "web: the integer is beyond 64 bits"),
        ({"web": 1, "worker": "x"}, "worker: the count"),
        ({"release": 2}, "'release' is the release phase"),
        ({"web": 1, "release": 0}, "not a process type"),
        ({}, "name at least one process type"),
        ([], "valid dictionary"),
        ("web=3", "valid dictionary"),
        ({f"p{i}": 1 for i in range(51)}, "at most 50 process types"),
    ],
)
def test_bad_formations_get_422_naming_the_key(
    node: Node, store: Store, body: Any, named: str
) -> None:
    node.client.patch(URL, json={"web": 2})
    response = node.client.patch(URL, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and named in error["message"], error
    assert stored(store) == {"web": 2}
    assert len(scales(store)) == 1 and len(node.runtime.scaled) == 1


def test_malformed_json_gets_422(node: Node) -> None:
    response = node.client.patch(
        URL, content=b'{"web": 3,', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid"


def test_viewers_read_deployers_scale(node: Node, store: Store) -> None:
    viewer, deployer = (
        auth(make_token(node.client, "viewer")),
        auth(make_token(node.client, "deployer")),
    )
    refused = node.client.patch(URL, json={"web": 2}, headers=viewer)
    assert refused.status_code == 403 and "deployer" in refused.json()["error"]["message"]
    assert node.client.get(URL, headers=viewer).status_code == 200
    assert node.client.patch(URL, json={"web": 2}, headers=deployer).status_code == 200
    assert stored(store) == {"web": 2}


def test_unknown_apps_and_other_tenants_get_404(node: Node) -> None:
    other = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    for response in (
        node.client.get("/api/v1/apps/nope/formation"),
        node.client.patch("/api/v1/apps/nope/formation", json={"web": 1}),
        node.client.patch(URL, json={"web": 1}, headers=auth(other)),
        node.client.get("/api/v1/apps/a%00b/formation"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert node.runtime.scaled == []


def test_without_a_runtime_the_formation_is_only_stored(api: Any) -> None:
    api.post("/api/v1/apps", json={"name": "web"})
    assert api.patch(URL, json={"web": 2}).json() == {"web": 2}
