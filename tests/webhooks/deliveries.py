"""Webhook deliveries as each git host sends them: the event, the body and the signed headers,
for tests that talk to a running shipway."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from shipway.webhooks.verify import Provider

ZERO = "0" * 40


def signed(
    provider: Provider, secret: str, event: str, body: bytes, delivery: str | None = None
) -> dict[str, str]:
    """The headers PROVIDER sends with BODY: event, delivery id and signature."""
    delivery = delivery or str(uuid.uuid4())
    mac = hmac.new(secret.encode(), body, hashlib.sha256)
    headers = {"Content-Type": "application/json"}
    if provider is Provider.GITHUB:
        headers.update(
            {
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": f"sha256={mac.hexdigest()}",
            }
        )
    elif provider is Provider.GITLAB:
        headers.update(
            {"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery, "X-Gitlab-Token": secret}
        )
    elif provider is Provider.BITBUCKET:
        headers.update(
            {
                "X-Event-Key": event,
                "X-Request-UUID": delivery,
                "X-Hub-Signature": f"sha256={mac.hexdigest()}",
            }
        )
    else:
        headers.update(
            {
                "X-Gitea-Event": event,
                "X-Gitea-Delivery": delivery,
                "X-Gitea-Signature": mac.hexdigest(),
            }
        )
    return headers


def gitlab_signed_form(secret: str, body: bytes, stamp: int | None = None) -> dict[str, str]:
    """GitLab's signed form: webhook-id, webhook-timestamp and a v1 signature."""
    hook_id = f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time()) if stamp is None else stamp
    message = f"{hook_id}.{stamp}.".encode() + body
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest())
    return {
        "webhook-id": hook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{signature.decode()}",
    }


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def push(provider: Provider, branch: str, sha: str, before: str = ZERO) -> tuple[str, bytes]:
    """A push of SHA to BRANCH."""
    ref = f"refs/heads/{branch}"
    if provider is Provider.GITLAB:
        body = {"object_kind": "push", "ref": ref, "before": before, "after": sha}
        return "Push Hook", _json(body)
    if provider is Provider.BITBUCKET:
        change = {"new": {"type": "branch", "name": branch, "target": {"hash": sha}}, "old": None}
        return "repo:push", _json({"push": {"changes": [change]}})
    return "push", _json({"ref": ref, "before": before, "after": sha, "deleted": False})


def deleted(provider: Provider, branch: str) -> tuple[str, bytes]:
    """BRANCH deleted."""
    if provider is Provider.GITEA:
        return "delete", _json({"ref": branch, "ref_type": "branch"})
    if provider is Provider.BITBUCKET:
        change = {"new": None, "old": {"type": "branch", "name": branch}}
        return "repo:push", _json({"push": {"changes": [change]}})
    if provider is Provider.GITLAB:
        body = {"object_kind": "push", "ref": f"refs/heads/{branch}", "after": ZERO}
        return "Push Hook", _json(body)
    return "push", _json({"ref": f"refs/heads/{branch}", "after": ZERO, "deleted": True})


def pull(provider: Provider, opened: bool, number: int, branch: str, sha: str) -> tuple[str, bytes]:
    """Pull (merge) request NUMBER from BRANCH at SHA, opened or else closed."""
    if provider is Provider.GITLAB:
        attributes = {
            "action": "open" if opened else "close",
            "iid": number,
            "source_branch": branch,
            "last_commit": {"id": sha},
        }
        body = {"object_kind": "merge_request", "object_attributes": attributes}
        return "Merge Request Hook", _json(body)
    if provider is Provider.BITBUCKET:
        pullrequest = {
            "id": number,
            "source": {"branch": {"name": branch}, "commit": {"hash": sha}},
        }
        event = "pullrequest:created" if opened else "pullrequest:fulfilled"
        return event, _json({"pullrequest": pullrequest})
    head = {"ref": branch, "sha": sha}
    body = {
        "action": "opened" if opened else "closed",
        "number": number,
        "pull_request": {"number": number, "head": head},
    }
    return "pull_request", _json(body)
