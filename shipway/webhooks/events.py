"""What a verified delivery asks for, the same for every host: deploy a branch (a push),
remove a branch's preview (a deleted branch), deploy or tear down a pull request's preview,
or nothing (a ping, or an event shipway does not act on, with the reason).

`parse` raises only BadPayload (a ValidationError): for a body that is not JSON, or JSON
without what the event must carry."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shipway.errors import ValidationError
from shipway.webhooks.verify import Provider

_SHA = re.compile(r"[0-9a-f]{7,64}")
_ZERO = re.compile(r"0+")


class BadPayload(ValidationError):
    pass


#: Each host's words for opening, updating and closing a pull request, as GitHub's.
_GITLAB_ACTIONS = {
    "open": "opened",
    "reopen": "reopened",
    "update": "synchronize",
    "close": "closed",
    "merge": "closed",
}
_BITBUCKET_ACTIONS = {
    "pullrequest:created": "opened",
    "pullrequest:updated": "synchronize",
    "pullrequest:fulfilled": "closed",
    "pullrequest:rejected": "closed",
}


class Kind(StrEnum):
    PUSH = "push"
    BRANCH_DELETED = "branch_deleted"
    PULL_OPENED = "pull_opened"
    PULL_CLOSED = "pull_closed"
    PING = "ping"
    IGNORED = "ignored"


@dataclass(frozen=True)
class HookEvent:
    kind: Kind
    branch: str | None = None
    sha: str | None = None
    #: The pull (merge) request's number.
    number: int | None = None
    #: Why nothing is done, for IGNORED.
    reason: str | None = None


def parse(host: Provider, event: str, body: bytes) -> list[HookEvent]:
    """What the delivery of EVENT with BODY asks for."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadPayload(f"the body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadPayload("the body is not a JSON object")
    try:
        return _PARSERS[host](event, data)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise BadPayload(
            f"a {host} {event or 'delivery'} without what it must carry: {e!r}"
        ) from None


def _ignored(why: str) -> list[HookEvent]:
    return [HookEvent(Kind.IGNORED, reason=why)]


def _github(event: str, data: dict[str, Any]) -> list[HookEvent]:
    if event == "ping":
        return [HookEvent(Kind.PING)]
    if event == "push":
        return [_push(data["ref"], data.get("after"), bool(data.get("deleted")))]
    if event == "pull_request":
        pull = data["pull_request"]
        head = pull["head"]
        return [_pull(data["action"], _number(data["number"]), head["ref"], head["sha"])]
    return _ignored(f"shipway does not act on {event or 'this'} events")


def _gitea(event: str, data: dict[str, Any]) -> list[HookEvent]:
    if event == "delete":
        if data.get("ref_type") != "branch":
            return _ignored("only deleted branches are acted on")
        return [HookEvent(Kind.BRANCH_DELETED, branch=_branch(data["ref"]))]
    if event == "pull_request":
        pull = data["pull_request"]
        head = pull["head"]
        action = {"synchronized": "synchronize"}.get(data["action"], data["action"])
        return [_pull(action, _number(data["number"]), head["ref"], head["sha"])]
    return _github(event, data)


def _gitlab(event: str, data: dict[str, Any]) -> list[HookEvent]:
    kind = data.get("object_kind")
    if kind == "push" or event == "Push Hook":
        return [_push(data["ref"], data.get("after"), False)]
    if kind == "merge_request" or event == "Merge Request Hook":
        attributes = data["object_attributes"]
        action = _GITLAB_ACTIONS.get(attributes.get("action", ""), "")
        sha = attributes["last_commit"]["id"]
        return [_pull(action, _number(attributes["iid"]), attributes["source_branch"], sha)]
    return _ignored(f"shipway does not act on {event or kind or 'this'} events")


def _bitbucket(event: str, data: dict[str, Any]) -> list[HookEvent]:
    if event == "repo:push":
        found = []
        for change in data["push"]["changes"]:
            new, old = change.get("new"), change.get("old")
            if new is None and old is not None and old.get("type") == "branch":
                found.append(HookEvent(Kind.BRANCH_DELETED, branch=_branch(old["name"])))
            elif new is not None and new.get("type") == "branch":
                found.append(_push(f"refs/heads/{new['name']}", new["target"]["hash"], False))
        return found or _ignored("the push changed no branch")
    if event.startswith("pullrequest:"):
        pull = data["pullrequest"]
        source = pull["source"]
        action = _BITBUCKET_ACTIONS.get(event, "")
        sha = source["commit"]["hash"]
        return [_pull(action, _number(pull["id"]), source["branch"]["name"], sha)]
    return _ignored(f"shipway does not act on {event or 'this'} events")


def _push(ref: Any, after: Any, deleted: bool) -> HookEvent:
    if not isinstance(ref, str) or not ref.startswith("refs/heads/"):
        return HookEvent(Kind.IGNORED, reason="only pushes to branches are deployed")
    branch = _branch(ref.removeprefix("refs/heads/"))
    if deleted or (isinstance(after, str) and _ZERO.fullmatch(after)):
        return HookEvent(Kind.BRANCH_DELETED, branch=branch)
    return HookEvent(Kind.PUSH, branch=branch, sha=_sha(after))


def _pull(action: str, number: int, branch: Any, sha: Any) -> HookEvent:
    if action in ("opened", "reopened", "synchronize"):
        return HookEvent(Kind.PULL_OPENED, branch=_branch(branch), sha=_sha(sha), number=number)
    if action == "closed":
        return HookEvent(Kind.PULL_CLOSED, branch=_branch(branch), number=number)
    return HookEvent(Kind.IGNORED, number=number, reason=f"pull request action {action or '?'!r}")


def _branch(name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > 255 or not name.isprintable():
        raise ValueError(f"not a branch name: {name!r}")
    return name


def _sha(sha: Any) -> str:
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise ValueError(f"not a commit sha: {sha!r}")
    return sha


def _number(number: Any) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 2**31:
        raise ValueError(f"not a pull request number: {number!r}")
    return number


_PARSERS = {
    Provider.GITHUB: _github,
    Provider.GITLAB: _gitlab,
    Provider.BITBUCKET: _bitbucket,
    Provider.GITEA: _gitea,
}
