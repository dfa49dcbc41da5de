"""Connecting a repository and receiving webhook deliveries through the API, with a real store
and a Temporal stand-in that records the workflows started: each bad input gets its answer
and queues nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from shipway.store import Store
from shipway.store.tables import AuditEntry, HookDelivery, RepoConnection
from shipway.webhooks.verify import Provider
from tests.api.conftest import Node
from tests.webhooks import deliveries

SECRET = "s3cret-for-hooks"
TOKEN = "host-api-token"
SHA = "a" * 40
GITEA_API = "https://git.example.com/api/v1"


def connect(node: Node, provider: str = "github", app: str = "web", **extra: Any) -> Any:
    body = {"provider": provider, "repo": "acme/web", "secret": SECRET, "token": TOKEN, **extra}
    return node.client.put(f"/api/v1/apps/{app}/connection", json=body)


def post(
    node: Node,
    provider: Provider,
    event: str,
    body: bytes,
    *,
    app: str = "web",
    delivery: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    sent = (
        headers
        if headers is not None
        else deliveries.signed(provider, SECRET, event, body, delivery)
    )
    return node.client.post(f"/hooks/{provider}/{app}", content=body, headers=sent)


def rows(store: Store) -> list[HookDelivery]:
    with store.transaction() as session:
        return list(session.scalars(select(HookDelivery).order_by(HookDelivery.id)))


def test_connect_stores_the_secret_and_token_encrypted_and_says_the_webhook_url(
    node: Node, store: Store
) -> None:
    made = connect(node)
    assert made.status_code == 200, made.text
    shown = made.json()
    assert shown["webhook_path"] == "/hooks/github/web"
    assert shown["webhook_url"].endswith("/hooks/github/web")
    assert shown["token"] is True and shown["api_url"] == "https://api.github.com"
    assert SECRET not in made.text and TOKEN not in made.text
    with store.transaction() as session:
        row = session.scalars(select(RepoConnection)).one()
        assert SECRET not in row.secret and row.token is not None and TOKEN not in row.token
    info = node.client.get("/api/v1/apps/web/info").json()
    assert info["connection"]["repo"] == "acme/web" and info["deliveries"] == []
    # Connecting again replaces the connection.
    assert connect(node, "gitea", api_url=GITEA_API).json()["webhook_path"] == "/hooks/gitea/web"
    assert node.client.get("/api/v1/apps/web/connection").json()["api_url"] == GITEA_API


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"provider": "svn"}, 422, "no git host 'svn'"),
        ({"repo": "acme"}, 422, "OWNER/NAME"),
        ({"repo": "acme/../etc"}, 422, "repo"),
        ({"provider": "gitea"}, 422, "api-url"),
        ({"api_url": "ftp://example.com"}, 422, "http"),
        ({"api_url": "https://user:pw@example.com/api/v3"}, 422, ""),
        ({"api_url": "https://example.com/" + "a" * 2100}, 422, "at most 2048"),
        ({"repo": "acme/" + "w" * 300}, 422, "255"),
        ({"secret": ""}, 422, "secret"),
        ({"secret": "x" * 257}, 422, "secret"),
        ({"token": ""}, 422, "token"),
        ({"secret": " padded "}, 422, "secret"),
        ({"secret": 7}, 422, "secret"),
    ],
)
def test_connect_refuses_bad_input(
    node: Node, body: dict[str, Any], status: int, says: str
) -> None:
    answer = connect(node, **body)
    assert answer.status_code == status, answer.text
    assert says.lower() in answer.json()["error"]["message"].lower()


def test_connect_needs_an_owner_and_an_existing_app(node: Node) -> None:
    assert connect(node, app="nope").status_code == 404
    deployer = node.client.post("/api/v1/tokens", json={"name": "d", "role": "deployer"}).json()
    answer = node.client.put(
        "/api/v1/apps/web/connection",
        json={"provider": "github", "repo": "a/b", "secret": SECRET},
        headers={"Authorization": f"Bearer {deployer['token']}"},
    )
    assert answer.status_code == 403


def test_a_push_is_queued_once_and_recorded_in_the_audit_trail(node: Node, store: Store) -> None:
    connect(node)
    event, body = deliveries.push(Provider.GITHUB, "main", SHA)
    answer = post(node, Provider.GITHUB, event, body, delivery="d-1")
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    assert answer.json()["work"] == [{"kind": "push", "branch": "main", "sha": SHA, "number": None}]
    assert len(node.temporal.started) == 1 and node.temporal.started[0].startswith("hook/")
    replay = post(node, Provider.GITHUB, event, body, delivery="d-1")
    assert (replay.status_code, replay.json()["status"]) == (200, "duplicate")
    assert len(node.temporal.started) == 1
    [row] = rows(store)
    assert (row.delivery_id, row.event, row.sha, row.status) == ("d-1", "push", SHA, "accepted")
    with store.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "hook.delivery")
        ).one()
        assert entry.actor == "webhook:github" and entry.subject == "app:web"
        assert entry.payload["delivery"] == "d-1" and entry.payload["sha"] == SHA
    listed = node.client.get("/api/v1/apps/web/deliveries").json()
    assert [d["delivery_id"] for d in listed] == ["d-1"]


def test_bad_deliveries_get_their_answer_and_queue_nothing(node: Node, store: Store) -> None:
    connect(node)
    event, body = deliveries.push(Provider.GITHUB, "main", SHA)
    unsigned = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "x"}
    assert post(node, Provider.GITHUB, event, body, headers=unsigned).status_code == 401
    forged = deliveries.signed(Provider.GITHUB, "not the secret", event, body)
    refused = post(node, Provider.GITHUB, event, body, headers=forged)
    assert refused.status_code == 401
    assert "does not match" in refused.json()["error"]["message"]
    assert post(node, Provider.GITHUB, event, body, app="nope").status_code == 404
    assert node.client.post("/hooks/svn/web", content=body).status_code == 404
    assert post(node, Provider.GITLAB, "Push Hook", body).status_code == 404  # not connected
    huge = b'{"pad": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    too_large = post(node, Provider.GITHUB, "push", huge)
    assert too_large.status_code == 413, too_large.text
    malformed = post(node, Provider.GITHUB, "push", b'{"ref": "refs/heads/main",')
    assert malformed.status_code == 400
    assert "the body is not valid JSON" in malformed.json()["error"]["message"]
    nested = b"[" * 100_000 + b"]" * 100_000
    too_deep = post(node, Provider.GITHUB, "push", nested)
    assert too_deep.status_code == 400 and "nested more than 64 levels" in too_deep.text
    no_id = deliveries.signed(Provider.GITHUB, SECRET, event, body)
    del no_id["X-GitHub-Delivery"]
    assert post(node, Provider.GITHUB, event, body, headers=no_id).status_code == 400
    assert node.temporal.started == [] and rows(store) == []


def test_unsupported_events_and_pings_are_acknowledged_without_work(
    node: Node, store: Store
) -> None:
    connect(node)
    issues = post(node, Provider.GITHUB, "issues", b'{"action": "opened"}', delivery="i-1")
    assert issues.status_code == 202
    assert issues.json()["status"] == "ignored"
    assert "does not act on issues" in issues.json()["reason"]
    tag = post(
        node, Provider.GITHUB, "push", b'{"ref": "refs/tags/v1", "after": "' + SHA.encode() + b'"}'
    )
    assert tag.status_code == 202 and "branches" in tag.json()["reason"]
    ping = post(node, Provider.GITHUB, "ping", b'{"zen": "Approachable is better."}')
    assert ping.status_code == 200 and ping.json()["status"] == "ignored"
    assert node.temporal.started == []
    assert [r.status for r in rows(store)] == ["ignored", "ignored", "ignored"]


def test_gitlab_signed_form_outside_the_tolerance_is_refused(node: Node) -> None:
    connect(node, "gitlab", repo="group/sub/web")
    event, body = deliveries.push(Provider.GITLAB, "main", SHA)
    headers = deliveries.signed(Provider.GITLAB, SECRET, event, body)
    fresh = {**headers, **deliveries.gitlab_signed_form(SECRET, body)}
    assert post(node, Provider.GITLAB, event, body, headers=fresh).status_code == 202
    stale = {**headers, **deliveries.gitlab_signed_form(SECRET, body, int(time.time()) - 600)}
    stale["X-Gitlab-Event-UUID"] = "another"
    answer = post(node, Provider.GITLAB, event, body, headers=stale)
    assert answer.status_code == 401 and "5 minutes" in answer.json()["error"]["message"]
    wrong_token = {**headers, "X-Gitlab-Token": "guess", "X-Gitlab-Event-UUID": "third"}
    assert post(node, Provider.GITLAB, event, body, headers=wrong_token).status_code == 401
    assert len(node.temporal.started) == 1


def test_a_delivery_temporal_cannot_take_is_forgotten_so_the_redelivery_works(
    node: Node, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(node)
    event, body = deliveries.push(Provider.GITHUB, "main", SHA)

    async def down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(node.temporal, "start_workflow", down)
    answer = post(node, Provider.GITHUB, event, body, delivery="d-9")
    assert answer.status_code == 503 and "redeliver" in answer.json()["error"]["message"]
    assert rows(store) == []
    monkeypatch.undo()
    assert post(node, Provider.GITHUB, event, body, delivery="d-9").status_code == 202
    assert len(node.temporal.started) == 1


def test_apps_of_one_name_in_two_organizations_are_told_apart_by_their_secrets(
    node: Node, store: Store
) -> None:
    connect(node)
    other = node.client.post("/api/v1/orgs", json={"name": "acme"}).json()
    as_acme = {"Authorization": f"Bearer {other['owner_token']}"}
    assert (
        node.client.post("/api/v1/apps", json={"name": "web"}, headers=as_acme).status_code == 201
    )
    theirs = {"provider": "github", "repo": "acme/web", "secret": "acme's own secret"}
    assert (
        node.client.put("/api/v1/apps/web/connection", json=theirs, headers=as_acme).status_code
        == 200
    )
    event, body = deliveries.push(Provider.GITHUB, "main", SHA)
    headers = deliveries.signed(Provider.GITHUB, "acme's own secret", event, body, "acme-1")
    assert post(node, Provider.GITHUB, event, body, headers=headers).status_code == 202
    assert post(node, Provider.GITHUB, event, body, delivery="ours-1").status_code == 202
    by_app = {r.delivery_id: r.app_id for r in rows(store)}
    assert by_app["acme-1"] != by_app["ours-1"]
    ours = node.client.get("/api/v1/apps/web/deliveries").json()
    assert [d["delivery_id"] for d in ours] == ["ours-1"]


def test_disconnecting_refuses_later_deliveries(node: Node) -> None:
    connect(node)
    assert node.client.delete("/api/v1/apps/web/connection").status_code == 204
    assert node.client.delete("/api/v1/apps/web/connection").status_code == 404
    event, body = deliveries.push(Provider.GITHUB, "main", SHA)
    assert post(node, Provider.GITHUB, event, body).status_code == 404
