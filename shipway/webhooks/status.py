"""Report how a commit's deploy went to its git host, as one POST to the host's commit-status
API; the host shows it beside the commit and on its pull requests.

- GitHub: `POST /repos/{owner}/{repo}/statuses/{sha}`, `Authorization: Bearer`.
- GitLab: `POST /projects/{url-encoded path}/statuses/{sha}`, `PRIVATE-TOKEN`.
- Bitbucket Cloud: `POST /repositories/{workspace}/{slug}/commit/{sha}/statuses/build`,
  `Authorization: Bearer`; `url` is required there.
- Gitea / Forgejo: `POST /repos/{owner}/{repo}/statuses/{sha}`, `Authorization: token`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx

from shipway.errors import ShipwayError
from shipway.webhooks.githost import check_repo, check_sha, web_root
from shipway.webhooks.verify import Provider

#: The longest reason kept from a host's refusal.
MAX_REASON = 200


class State(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


class StatusError(ShipwayError):
    """Raised when a host does not take a commit status; `status` is its HTTP status, or None
    when it was not reached. Worth retrying."""

    code = "status_failed"

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message, details={"status": status})
        self.status = status


#: Each host's word for each state. GitLab and Bitbucket have no "error": it fails the commit.
_WORDS: dict[Provider, dict[State, str]] = {
    Provider.GITHUB: {s: s.value for s in State},
    Provider.GITEA: {s: s.value for s in State},
    Provider.GITLAB: {
        State.PENDING: "running",
        State.SUCCESS: "success",
        State.FAILURE: "failed",
        State.ERROR: "failed",
    },
    Provider.BITBUCKET: {
        State.PENDING: "INPROGRESS",
        State.SUCCESS: "SUCCESSFUL",
        State.FAILURE: "FAILED",
        State.ERROR: "FAILED",
    },
}

#: The longest description each host stores.
_DESCRIPTION = {
    Provider.GITHUB: 140,
    Provider.GITLAB: 255,
    Provider.BITBUCKET: 255,
    Provider.GITEA: 255,
}


async def report(
    http: httpx.AsyncClient,
    provider: Provider,
    api_base: str,
    repo: str,
    token: str,
    sha: str,
    state: State,
    *,
    target_url: str | None,
    description: str,
    context: str = "shipway",
) -> None:
    """Set the status CONTEXT of SHA in REPO to STATE; StatusError if the host refuses."""
    url = _url(provider, api_base, check_repo(provider, repo), check_sha(sha))
    body = _body(provider, api_base, state, target_url, description, context)
    try:
        response = await http.post(url, json=body, headers=_headers(provider, token))
    except httpx.HTTPError as e:
        reason = str(e).replace(token, "***") or type(e).__name__
        raise StatusError(f"{provider} was not reached: {reason}", status=None) from e
    if not response.is_success:
        reason = _reason(response).replace(token, "***")
        raise StatusError(
            f"{provider} answered {response.status_code} to the commit status: {reason}",
            status=response.status_code,
        )


def _url(provider: Provider, api: str, repo: str, sha: str) -> str:
    if provider is Provider.GITLAB:
        return f"{api}/projects/{quote(repo, safe='')}/statuses/{sha}"
    if provider is Provider.BITBUCKET:
        return f"{api}/repositories/{repo}/commit/{sha}/statuses/build"
    return f"{api}/repos/{repo}/statuses/{sha}"


def _headers(provider: Provider, token: str) -> dict[str, str]:
    if provider is Provider.GITHUB:
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    if provider is Provider.GITLAB:
        return {"PRIVATE-TOKEN": token}
    if provider is Provider.BITBUCKET:
        return {"Authorization": f"Bearer {token}"}
    return {"Authorization": f"token {token}"}


def _body(
    provider: Provider,
    api: str,
    state: State,
    target_url: str | None,
    description: str,
    context: str,
) -> dict[str, str]:
    limit = _DESCRIPTION[provider]
    if len(description) > limit:
        description = description[: limit - 1] + "…"
    body = {"state": _WORDS[provider][state], "description": description}
    if provider is Provider.BITBUCKET:
        url = target_url or web_root(provider, api)
        return body | {"key": context, "name": context, "url": url}
    body["name" if provider is Provider.GITLAB else "context"] = context
    if target_url is not None:
        body["target_url"] = target_url
    return body


def _reason(response: httpx.Response) -> str:
    """The host's own words for a refusal, when it gives them, else the status's phrase."""
    try:
        data = response.json()
    except ValueError:
        data = None
    message: Any = None
    if isinstance(data, dict):
        message = data.get("message") or data.get("error")
        if isinstance(message, dict):
            message = message.get("message")
    text = str(message) if message else response.reason_phrase or "no reason given"
    return text[:MAX_REASON]
