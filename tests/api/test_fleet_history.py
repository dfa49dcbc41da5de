"""GET /api/v1/fleet/history: the build queue hour by hour, for the platform's owners only."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from shipway.store import Store
from shipway.store.tables import Build
from shipway.store.types import utcnow
from tests.api.conftest import Node, app_id, environment
from tests.helpers import auth, make_token

URL = "/api/v1/fleet/history"


def test_the_queue_hour_by_hour_with_its_waits(node: Node, store: Store) -> None:
    now = utcnow()
    with store.transaction() as session:
        made = now - timedelta(minutes=3)
        env = environment(store, "production")
        session.add(
            Build(app_id=app_id(store), environment_id=env, status="queued", created_at=made)
        )
        session.add(
            Build(
                app_id=app_id(store),
                environment_id=env,
                status="building",
                created_at=made,
                started_at=made + timedelta(seconds=30),
            )
        )
    answer = node.client.get(URL, params={"hours": 6})
    assert answer.status_code == 200, answer.text
    series = answer.json()
    assert len(series) == 6
    assert [datetime.fromisoformat(h["start"]).hour for h in series][-1] == now.hour
    assert series[-1]["backlog"] == 1  # the queued one, now
    started = (made + timedelta(seconds=30)).replace(minute=0, second=0, microsecond=0)
    [hour] = [h for h in series if datetime.fromisoformat(h["start"]) == started]
    assert hour["started"] == 1 and hour["wait_median"] == hour["wait_max"] == 30.0
    assert len(node.client.get(URL).json()) == 24


def test_it_is_the_platform_owners_and_takes_1_to_168_hours(node: Node) -> None:
    for hours in (0, 169, "x"):
        assert node.client.get(URL, params={"hours": hours}).status_code == 422
    deployer = make_token(node.client, "deployer")
    assert node.client.get(URL, headers=auth(deployer)).status_code == 403
    tenant = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    refused = node.client.get(URL, headers=auth(tenant))
    assert refused.status_code == 403 and "platform owner" in refused.json()["error"]["message"]


def test_no_token_no_history(node: Node) -> None:
    with TestClient(node.client.app, raise_server_exceptions=False) as anonymous:
        assert anonymous.get(URL).status_code == 401
