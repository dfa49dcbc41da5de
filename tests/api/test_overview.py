"""/api/v1/apps/{app}/overview: the app page's reads in one answer, equal to what the six
routes it stands for answer one by one."""

from __future__ import annotations

import pytest

from shipway.deploys.lifecycle import DeploymentStatus
from shipway.store import Store
from tests.api.conftest import Node, release
from tests.helpers import auth, make_token

URL = "/api/v1/apps/web/overview"


def test_the_overview_is_what_each_route_answers(node: Node, store: Store) -> None:
    for version in (1, 2):
        release(store, version)
    release(store, 3, DeploymentStatus.FAILED)
    release(store, 4, env="feature")
    assert node.client.patch("/api/v1/apps/web/env", json={"set": {"A": "1"}}).status_code == 200
    node.runtime.running = [{"environment": "production", "state": "running", "instances": []}]
    answer = node.client.get(URL, params={"limit": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()

    def each(path: str, **params: object) -> object:
        alone = node.client.get(f"/api/v1{path}", params=params)
        assert alone.status_code == 200, alone.text
        return alone.json()

    assert body["info"] == each("/apps/web/info")
    assert body["info"]["environments"][0]["state"] == "running"
    assert body["deployments"] == each("/apps/web/deployments", limit=2)
    assert len(body["deployments"]) == 2
    assert body["releases"] == each("/apps/web/releases", limit=2)
    assert body["env"] == each("/apps/web/env")
    assert body["addons"] == each("/addons", app="web")
    # The window ends at the moment of each read.
    delivery, alone = body["delivery"], each("/apps/web/delivery")
    assert isinstance(alone, dict) and delivery.pop("end") and alone.pop("end")
    assert delivery == alone


def test_a_viewer_reads_it_and_secrets_stay_hidden(node: Node) -> None:
    secret = {"set": {"KEY": "s3cret"}, "secret": True}
    assert node.client.patch("/api/v1/apps/web/env", json=secret).status_code == 200
    viewer = node.client.get(URL, headers=auth(make_token(node.client, "viewer")))
    assert viewer.status_code == 200, viewer.text
    assert viewer.json()["env"][0]["value"] == "***"
    assert "s3cret" not in viewer.text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/apps/nope/overview", 404),
        (f"{URL}?limit=0", 422),
        (f"{URL}?limit=501", 422),
        (f"{URL}?limit=x", 422),
    ],
)
def test_bad_reads_get_a_clear_4xx(node: Node, url: str, status: int) -> None:
    answer = node.client.get(url)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"]


def test_another_tenant_sees_no_such_app(node: Node) -> None:
    other = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    assert node.client.get(URL, headers=auth(other)).status_code == 404
    assert node.client.get(URL, headers={"Authorization": "Bearer nope"}).status_code == 401
