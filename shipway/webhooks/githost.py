"""Where a connected repository lives: its OWNER/NAME on the host, the host's API root and the
HTTPS address git clones it from. GitHub Enterprise, self-managed GitLab and Gitea/Forgejo
serve their API under the web root (`/api/v3`, `/api/v4`, `/api/v1`); the public GitHub and
Bitbucket Cloud serve it from a host of its own."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from shipway.errors import ValidationError
from shipway.webhooks.verify import Provider

DEFAULT_API: dict[Provider, str | None] = {
    Provider.GITHUB: "https://api.github.com",
    Provider.GITLAB: "https://gitlab.com/api/v4",
    Provider.BITBUCKET: "https://api.bitbucket.org/2.0",
    Provider.GITEA: None,
}

#: The longest OWNER/NAME taken, nested GitLab groups included.
MAX_REPO = 255
#: The longest API URL taken (the store keeps this many characters).
MAX_URL = 2048

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
#: Digits of a full commit id: SHA-1 (SHA-256 ids have 64).
FULL_SHA = 40
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: Where each host keeps a pull request's head in the base repository (Bitbucket keeps none).
_PULL_REFS = {
    Provider.GITHUB: "refs/pull/{}/head",
    Provider.GITEA: "refs/pull/{}/head",
    Provider.GITLAB: "refs/merge-requests/{}/head",
}

#: Where a host's API root lies under its web root.
API_SUFFIX = {
    Provider.GITHUB: "/api/v3",
    Provider.GITLAB: "/api/v4",
    Provider.BITBUCKET: "/2.0",
    Provider.GITEA: "/api/v1",
}
#: The hosted services whose API has a host of its own, and their web roots.
_HOSTED_WEB = {
    (Provider.GITHUB, "https://api.github.com"): "https://github.com",
    (Provider.BITBUCKET, "https://api.bitbucket.org/2.0"): "https://bitbucket.org",
}


def check_repo(provider: Provider, repo: str) -> str:
    """REPO as OWNER/NAME (GitLab: GROUP/…/NAME); ValidationError naming what is wrong."""
    if not repo or len(repo) > MAX_REPO:
        raise ValidationError(f"the repository must be OWNER/NAME of 1 to {MAX_REPO} characters")
    if repo.startswith("/") or repo.endswith("/"):
        raise ValidationError("the repository must be OWNER/NAME, without a leading or trailing /")
    if repo.endswith(".git"):
        raise ValidationError("the repository must be OWNER/NAME, without .git")
    segments = repo.split("/")
    nested = provider is Provider.GITLAB
    if len(segments) < 2 or (len(segments) > 2 and not nested):
        shape = "GROUP/NAME or GROUP/SUBGROUP/NAME" if nested else "OWNER/NAME"
        raise ValidationError(f"the repository must be {shape}, not {repo!r}")
    for segment in segments:
        if ".." in segment or not _SEGMENT.fullmatch(segment):
            raise ValidationError(
                f"{segment!r} in the repository is not a name: use letters, digits, _ . and -,"
                " starting with a letter, digit or _, and no .."
            )
    return repo


def check_sha(sha: str) -> str:
    """SHA, if it is a full commit id (SHA-1 or SHA-256) in lower-case hex."""
    if not _SHA.fullmatch(sha):
        raise ValidationError(f"{sha[:80]!r} is not a full commit sha")
    return sha


def pull_ref(provider: Provider, number: int) -> str | None:
    """The ref of pull (merge) request NUMBER's head on PROVIDER, if the host keeps one."""
    ref = _PULL_REFS.get(provider)
    return ref.format(number) if ref else None


def api_base(provider: Provider, api_url: str | None) -> str:
    """The host's API root, without a trailing slash: API_URL, or the hosted service's."""
    url = api_url or DEFAULT_API[provider]
    if url is None:
        raise ValidationError(
            f"{provider} is self-hosted: give its API root with --api-url"
            " (for example https://codeberg.org/api/v1)"
        )
    if len(url) > MAX_URL:
        raise ValidationError(f"the API URL must be at most {MAX_URL} characters")
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # a bad port raises ValueError
    except ValueError as e:
        raise ValidationError(f"the API URL is not a URL: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("the API URL must start with https:// (or http://) and name a host")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("the API URL must not carry credentials; give the token with --token")
    if "?" in url or "#" in url:
        raise ValidationError("the API URL must not have a query or a fragment")
    return url.strip().rstrip("/")


def web_root(provider: Provider, api_base: str) -> str:
    """The host's web address that repositories live under, from its API root."""
    hosted = _HOSTED_WEB.get((provider, api_base))
    return hosted or api_base.removesuffix(API_SUFFIX[provider])


def clone_url(provider: Provider, api_base: str, repo: str) -> str:
    """The HTTPS address git fetches REPO from."""
    return f"{web_root(provider, api_base)}/{repo}.git"
