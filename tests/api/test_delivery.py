"""/api/v1/apps/{app}/delivery and /api/v1/delivery: the delivery metrics of an app's
production and of the organization's; and the deployments listing that the timeline reads."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from shipway.store import Store
from shipway.store.tables import Deployment, Environment
from shipway.store.types import utcnow
from tests.api.conftest import Node, app_id
from tests.helpers import auth, make_token

APP_URL = "/api/v1/apps/web/delivery"
ORG_URL = "/api/v1/delivery"


def deployed(
    store: Store,
    status: str,
    finished: datetime,
    *,
    committed: datetime | None = None,
    source: str = "git",
) -> int:
    """A production deployment of web that ended as STATUS at FINISHED."""
    with store.transaction() as session:
        owner = app_id(store)
        env = session.scalar(
            select(Environment.id).where(
                Environment.app_id == owner, Environment.name == "production"
            )
        )
        assert env is not None
        row = Deployment(
            app_id=owner,
            environment_id=env,
            status=status,
            source=source,
            commit_sha="c" * 40 if committed else None,
            author="Ada <ada@example.com>" if committed else None,
            committed_at=committed,
            actor="token:1",
            created_at=finished - timedelta(minutes=2),
            finished_at=finished,
        )
        session.add(row)
        session.flush()
        return row.id


def test_the_metrics_of_an_app_and_of_its_organization(node: Node, store: Store) -> None:
    now = utcnow()
    went_live = now - timedelta(hours=2)
    deployed(store, "retired", went_live, committed=went_live - timedelta(hours=3))
    deployed(store, "failed", now - timedelta(minutes=90))
    deployed(store, "live", now - timedelta(hours=1))
    viewer = auth(make_token(node.client, "viewer"))

    answer = node.client.get(APP_URL, params={"days": 7}, headers=viewer)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["app"] == "web" and body["days"] == 7 and len(body["series"]) == 7
    assert (body["deployments"], body["changes"], body["failures"]) == (2, 3, 1)
    assert body["deployments_per_day"] == round(2 / 7, 3)
    assert body["change_failure_rate"] == round(1 / 3, 4)
    assert body["lead_time_median"] == body["lead_time_p90"] == 3 * 3600.0
    assert (body["restores"], body["time_to_restore_median"], body["unrestored"]) == (1, 1800.0, 0)
    assert sum(day["deployments"] for day in body["series"]) == 2
    assert set(body["series"][-1]) == {
        "day",
        "deployments",
        "changes",
        "failures",
        "change_failure_rate",
        "lead_time_median",
        "lead_time_p90",
        "restores",
        "time_to_restore_median",
    }

    whole = node.client.get(ORG_URL, headers=viewer)
    assert whole.status_code == 200, whole.text
    assert whole.json()["app"] is None and whole.json()["days"] == 30
    assert (whole.json()["deployments"], whole.json()["failures"]) == (2, 1)


def test_no_deployments_are_zeros_and_nulls(node: Node) -> None:
    body = node.client.get(APP_URL).json()
    assert body["days"] == 30 and body["deployments"] == 0 and body["deployments_per_day"] == 0
    assert body["lead_time_median"] is None and body["change_failure_rate"] is None
    assert body["time_to_restore_median"] is None
    assert [day["deployments"] for day in body["series"]] == [0] * 30


@pytest.mark.parametrize("url", [APP_URL, ORG_URL])
def test_bad_windows_get_422_and_no_token_401(node: Node, url: str) -> None:
    for days in ("0", "366", "400", "-1", "abc", "1.5"):
        answer = node.client.get(url, params={"days": days})
        assert answer.status_code == 422, (days, answer.text)
        assert answer.json()["error"]["code"] == "invalid"
    assert node.client.get(url, params={"days": 365}).status_code == 200
    node.client.headers.pop("Authorization")
    anonymous = node.client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"


def test_another_tenants_app_and_unknown_apps_are_404(node: Node) -> None:
    other = node.client.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    for answer in (
        node.client.get(APP_URL, headers=auth(other)),
        node.client.get("/api/v1/apps/nope/delivery"),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"
    # Their organization's metrics are their own: none of web's deployments.
    deployed_in_acme = node.client.get(ORG_URL, headers=auth(other)).json()
    assert deployed_in_acme["deployments"] == 0


def test_the_deployments_listing_names_commit_author_time_trigger_and_duration(
    node: Node, store: Store
) -> None:
    now = utcnow()
    committed = now - timedelta(hours=5)
    pushed = deployed(store, "live", now - timedelta(hours=1), committed=committed)
    uploaded = deployed(store, "failed", now - timedelta(hours=2), source="upload")
    listed = node.client.get("/api/v1/apps/web/deployments")
    assert listed.status_code == 200, listed.text
    by_id = {d["id"]: d for d in listed.json()}
    push, upload = by_id[pushed], by_id[uploaded]
    assert (push["commit"], push["author"]) == ("c" * 40, "Ada <ada@example.com>")
    assert push["committed_at"] == committed.isoformat()
    assert (push["source"], push["actor"], push["duration"]) == ("git", "token:1", 120.0)
    assert push["created_at"] == (now - timedelta(hours=1, minutes=2)).isoformat()
    assert upload["author"] is upload["committed_at"] is None
    assert (upload["source"], upload["status"], upload["duration"]) == ("upload", "failed", 120.0)
    # What the listing always had is all still there.
    assert set(push) >= {
        "id",
        "app",
        "environment",
        "status",
        "ref",
        "commit",
        "source",
        "build_id",
        "release",
        "reason",
        "url",
        "workflow_id",
        "created_at",
        "duration",
    }
    one = node.client.get(f"/api/v1/deployments/{pushed}").json()
    assert one == push
