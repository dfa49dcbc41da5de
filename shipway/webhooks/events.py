"""What a verified delivery asks for, the same for every host: deploy a branch (a push),
remove a branch's preview (a deleted branch), deploy or tear down a pull request's preview,
or nothing (a ping, or an event shipway does not act on, with the reason).

`parse` raises only BadPayload (a BadRequest): for a body that is not JSON, or JSON
without what the event must carry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shipway import jsontext
from shipway.errors import BadRequest
from shipway.webhooks.verify import Provider

_SHA = re.compile(r"[0-9a-f]{7,64}")
#: The longest branch name taken: its ref, refs/heads/NAME, is kept in 255 characters.
MAX_BRANCH = 255 - len("refs/heads/")
_ZERO = re.compile(r"0+")


class BadPayload(BadRequest):
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


def acted_on(found: list[HookEvent]) -> list[HookEvent]:
    """The events of FOUND that ask for something: not pings, not ignored ones."""
    return [e for e in found if e.kind not in (Kind.PING, Kind.IGNORED)]


def parse(host: Provider, event: str, body: bytes) -> list[HookEvent]:
    """What the delivery of EVENT with BODY asks for."""
    data = jsontext.loads(body, "the body", BadPayload)
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
        branch = None if _fork(head, pull.get("base")) else head["ref"]
        return [_pull(data["action"], _number(data["number"]), branch, head["sha"])]
    return _ignored(f"shipway does not act on {event or 'this'} events")


def _fork(head: Any, base: Any) -> bool:
    """Whether a GitHub or Gitea pull request's head lies in another repository than its
    base (a fork): its branch is not the connected repository's."""
    if not isinstance(base, dict):
        return False
    head_repo, base_repo = head.get("repo"), base.get("repo")
    if isinstance(head_repo, dict) and isinstance(base_repo, dict):
        return head_repo.get("id") != base_repo.get("id")
    return "repo_id" in head and head.get("repo_id") != base.get("repo_id")


def _gitea(event: str, data: dict[str, Any]) -> list[HookEvent]:
    if event == "delete":
        if data.get("ref_type") != "branch":
            return _ignored("only deleted branches are acted on")
        return [HookEvent(Kind.BRANCH_DELETED, branch=_branch(data["ref"]))]
    if event == "pull_request":
        data = {
            **data,
            "action": {"synchronized": "synchronize"}.get(data["action"], data["action"]),
        }
    return _github(event, data)


def _gitlab(event: str, data: dict[str, Any]) -> list[HookEvent]:
    kind = data.get("object_kind")
    if kind == "push" or event == "Push Hook":
        return [_push(data["ref"], data.get("after"), False)]
    if kind == "merge_request" or event == "Merge Request Hook":
        attributes = data["object_attributes"]
        action = _gitlab_action(attributes)
        sha = attributes["last_commit"]["id"]
        fork = attributes.get("source_project_id") != attributes.get("target_project_id")
        branch = None if fork else attributes["source_branch"]
        return [_pull(action, _number(attributes["iid"]), branch, sha)]
    return _ignored(f"shipway does not act on {event or kind or 'this'} events")


def _gitlab_action(attributes: dict[str, Any]) -> str:
    """GitLab's merge request action in GitHub's words. An update is new code only when it
    says the old revision (a title or label edit does not) and the request is open."""
    action = str(attributes.get("action", ""))
    if action == "update" and ("oldrev" not in attributes or attributes.get("state") != "opened"):
        return "update without new commits"
    return _GITLAB_ACTIONS.get(action, action)


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
        action = _BITBUCKET_ACTIONS.get(event, event.removeprefix("pullrequest:"))
        sha = source["commit"]["hash"]
        fork = _full_name(source) != _full_name(pull.get("destination"))
        branch = None if fork else source["branch"]["name"]
        return [_pull(action, _number(pull["id"]), branch, sha)]
    return _ignored(f"shipway does not act on {event or 'this'} events")


def _full_name(side: Any) -> Any:
    """The repository a Bitbucket pull request side lies in (None when the payload omits it)."""
    repository = side.get("repository") if isinstance(side, dict) else None
    return repository.get("full_name") if isinstance(repository, dict) else None


def _push(ref: Any, after: Any, deleted: bool) -> HookEvent:
    if not isinstance(ref, str) or not ref.startswith("refs/heads/"):
        return HookEvent(Kind.IGNORED, reason="only pushes to branches are deployed")
    branch = _branch(ref.removeprefix("refs/heads/"))
    if deleted or (isinstance(after, str) and _ZERO.fullmatch(after)):
        return HookEvent(Kind.BRANCH_DELETED, branch=branch)
    return HookEvent(Kind.PUSH, branch=branch, sha=_sha(after))


def _pull(action: str, number: int, branch: Any, sha: Any) -> HookEvent:
    """A pull request's event; BRANCH is None for one from a fork."""
    head = None if branch is None else _branch(branch)
    if action in ("opened", "reopened", "synchronize"):
        return HookEvent(Kind.PULL_OPENED, branch=head, sha=_sha(sha), number=number)
    if action == "closed":
        return HookEvent(Kind.PULL_CLOSED, branch=head, number=number)
    return HookEvent(Kind.IGNORED, number=number, reason=f"pull request action {action or '?'!r}")


def _branch(name: Any) -> str:
    """NAME, if it can be a branch a deployment records (as refs/heads/NAME, 255 at most)."""
    if not isinstance(name, str) or not name or len(name) > MAX_BRANCH or not name.isprintable():
        raise ValueError(f"not a branch name of 1 to {MAX_BRANCH} characters: {name!r:.80}")
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
