"""What each host's deliveries ask for. The payloads keep the fields shipway reads from
each host's documented examples of these events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipway.webhooks.events import BadPayload, HookEvent, Kind, parse
from shipway.webhooks.verify import Provider

SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
ZERO = "0" * 40


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def github_pull(action: str) -> bytes:
    head = {"ref": "feature", "sha": SHA}
    return body({"action": action, "number": 42, "pull_request": {"head": head}})


@pytest.mark.parametrize(
    ("host", "event", "payload", "expected"),
    [
        (Provider.GITHUB, "ping", {"zen": "z", "hook_id": 1}, HookEvent(Kind.PING)),
        (Provider.GITHUB, "push", {"ref": "refs/heads/main", "after": SHA},
         HookEvent(Kind.PUSH, branch="main", sha=SHA)),
        (Provider.GITHUB, "push", {"ref": "refs/heads/old", "after": ZERO, "deleted": True},
         HookEvent(Kind.BRANCH_DELETED, branch="old")),
        (Provider.GITHUB, "push", {"ref": "refs/tags/v1", "after": SHA},
         HookEvent(Kind.IGNORED, reason="only pushes to branches are deployed")),
        (Provider.GITLAB, "Push Hook",
         {"object_kind": "push", "ref": "refs/heads/main", "after": SHA},
         HookEvent(Kind.PUSH, branch="main", sha=SHA)),
        (Provider.GITLAB, "Merge Request Hook",
         {"object_kind": "merge_request", "object_attributes": {
             "iid": 7, "action": "update", "source_branch": "feature", "state": "opened",
             "oldrev": "b" * 40, "last_commit": {"id": SHA}}},
         HookEvent(Kind.PULL_OPENED, branch="feature", sha=SHA, number=7)),
        (Provider.GITLAB, "Merge Request Hook",  # a title edit: no oldrev
         {"object_kind": "merge_request", "object_attributes": {
             "iid": 7, "action": "update", "source_branch": "feature", "state": "opened",
             "last_commit": {"id": SHA}}},
         HookEvent(Kind.IGNORED, number=7,
                   reason="pull request action 'update without new commits'")),
        (Provider.GITLAB, "Merge Request Hook",
         {"object_kind": "merge_request", "object_attributes": {
             "iid": 7, "action": "approved", "source_branch": "feature",
             "last_commit": {"id": SHA}}},
         HookEvent(Kind.IGNORED, number=7, reason="pull request action 'approved'")),
        (Provider.GITHUB, "pull_request",  # from a fork
         {"action": "opened", "number": 9, "pull_request": {
             "head": {"ref": "main", "sha": SHA, "repo": {"id": 2}},
             "base": {"ref": "main", "repo": {"id": 1}}}},
         HookEvent(Kind.PULL_OPENED, sha=SHA, number=9)),
        (Provider.GITLAB, "Merge Request Hook",
         {"object_kind": "merge_request", "object_attributes": {
             "iid": 7, "action": "merge", "source_branch": "feature",
             "last_commit": {"id": SHA}}},
         HookEvent(Kind.PULL_CLOSED, branch="feature", number=7)),
        (Provider.BITBUCKET, "repo:push",
         {"push": {"changes": [
             {"new": {"type": "branch", "name": "main", "target": {"hash": SHA}}, "old": None},
             {"new": None, "old": {"type": "branch", "name": "gone"}}]}},
         [HookEvent(Kind.PUSH, branch="main", sha=SHA),
          HookEvent(Kind.BRANCH_DELETED, branch="gone")]),
        (Provider.BITBUCKET, "pullrequest:created",
         {"pullrequest": {"id": 3, "source": {
             "branch": {"name": "fix"}, "commit": {"hash": SHA[:12]}}}},
         HookEvent(Kind.PULL_OPENED, branch="fix", sha=SHA[:12], number=3)),
        (Provider.GITEA, "push", {"ref": "refs/heads/dev", "after": SHA},
         HookEvent(Kind.PUSH, branch="dev", sha=SHA)),
        (Provider.GITEA, "delete", {"ref": "dev", "ref_type": "branch"},
         HookEvent(Kind.BRANCH_DELETED, branch="dev")),
        (Provider.GITEA, "pull_request",
         {"action": "synchronized", "number": 5,
          "pull_request": {"head": {"ref": "x", "sha": SHA}}},
         HookEvent(Kind.PULL_OPENED, branch="x", sha=SHA, number=5)),
        (Provider.GITHUB, "issues", {"action": "opened"},
         HookEvent(Kind.IGNORED, reason="shipway does not act on issues events")),
    ],
)  # fmt: skip
def test_each_hosts_events(
    host: Provider, event: str, payload: Any, expected: HookEvent | list[HookEvent]
) -> None:
    wanted = expected if isinstance(expected, list) else [expected]
    assert parse(host, event, body(payload)) == wanted


def test_pull_requests_open_update_and_close() -> None:
    assert parse(Provider.GITHUB, "pull_request", github_pull("opened"))[0].kind is Kind.PULL_OPENED
    assert parse(Provider.GITHUB, "pull_request", github_pull("synchronize"))[0].number == 42
    closed = parse(Provider.GITHUB, "pull_request", github_pull("closed"))[0]
    assert closed == HookEvent(Kind.PULL_CLOSED, branch="feature", number=42)
    labelled = parse(Provider.GITHUB, "pull_request", github_pull("labeled"))[0]
    assert labelled.kind is Kind.IGNORED and "labeled" in (labelled.reason or "")


def test_malformed_deliveries_are_named() -> None:
    with pytest.raises(BadPayload, match="not valid JSON"):
        parse(Provider.GITHUB, "push", b"{not json")
    with pytest.raises(BadPayload, match="not a JSON object"):
        parse(Provider.GITHUB, "push", b"[1, 2]")
    with pytest.raises(BadPayload, match="without what it must carry"):
        parse(Provider.GITHUB, "push", body({"after": SHA}))
    with pytest.raises(BadPayload, match="not a commit sha"):
        parse(Provider.GITHUB, "push", body({"ref": "refs/heads/main", "after": "HEAD"}))


def test_a_branch_whose_ref_the_store_cannot_keep_is_refused() -> None:
    longest = "b" * 244
    assert parse(Provider.GITHUB, "push", body({"ref": f"refs/heads/{longest}", "after": SHA}))
    with pytest.raises(BadPayload, match="1 to 244 characters"):
        parse(Provider.GITHUB, "push", body({"ref": f"refs/heads/{longest}b", "after": SHA}))
