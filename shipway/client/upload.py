"""Start a deployment, show its build log as it is written, and say how it ended.

`shipway deploy` uploads a source tar; `git push` (through the pre-receive hook) names the
pushed commit, which the server archives from the app's repository itself, so a push's tree
is packed once and crosses the API once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from shipway import tracing
from shipway.client.api import Api, describe_error
from shipway.client.follow import READ_TIMEOUT, read_log
from shipway.deploys.lifecycle import DeploymentStatus, settled
from shipway.errors import ClientError

#: Seconds at most the deployment is waited for once its log ended.
OUTCOME_WAIT = 600.0
#: The header by which the API names the deployment a change started (a config change's).
DEPLOYMENT_HEADER = "X-Shipway-Deployment"

Say = Callable[[str], Any]


@dataclass(frozen=True)
class Source:
    """One source tree to deploy: its tar chunks and where it came from."""

    app: str
    chunks: Iterable[bytes]
    origin: str = "upload"
    ref: str | None = None
    sha: str | None = None
    environment: str | None = None


@dataclass(frozen=True)
class Pushed:
    """A commit pushed to the app's repository on the server; QUARANTINE names the directory
    that holds a push's objects until its pre-receive hook accepts it."""

    app: str
    ref: str
    sha: str
    quarantine: str | None = None


def deploy(api: Api, source: Source | Pushed, say: Say) -> int:
    """Start, follow, report through SAY; 0 when the deployment went live, else 1."""
    timeout = httpx.Timeout(api.timeout, read=READ_TIMEOUT)
    shown: list[str] = [""]

    def show(line: str) -> None:
        shown[0] = line
        say(line)

    # With traces on, the deployment's spans are children of the caller's (a push's).
    with api.client(timeout=timeout, headers=tracing.headers()) as http:
        started = _start(http, api, source)
        show(
            f"-----> Deploying to {started['environment']} of {source.app} "
            f"(build {started['build_id']})"
        )
        build = read_log(api, int(started["build_id"]), follow=True, on_line=show, client=http)
        deployment = wait(http, api, int(started["id"]))
    said, code = outcome(deployment, build)
    if said != shown[0]:  # the log's own last line may already say it
        say(said)
    return code


def _start(http: httpx.Client, api: Api, source: Source | Pushed) -> dict[str, Any]:
    """Ask for the deployment: an upload of SOURCE's tar, or a pushed commit's; what started."""
    headers = {"Authorization": f"Bearer {api.token}"}
    request: dict[str, Any]
    if isinstance(source, Source):
        params = {"source": source.origin}
        for name, value in (("ref", source.ref), ("sha", source.sha), ("env", source.environment)):
            if value:
                params[name] = value
        headers["Content-Type"] = "application/x-tar"
        path, request = "deployments", {"params": params, "content": source.chunks}
        failing = "cannot upload the source to shipway"
    else:
        body = {"ref": source.ref, "sha": source.sha, "quarantine": source.quarantine}
        path, request, failing = "pushes", {"json": body}, "cannot reach shipway"
    try:
        response = http.post(
            f"{api.url}/api/v1/apps/{source.app}/{path}", headers=headers, **request
        )
    except httpx.HTTPError as e:
        raise ClientError(f"{failing} at {api.url}: {e}") from e
    if response.status_code >= 400:
        raise ClientError(describe_error(response))
    started: dict[str, Any] = response.json()
    return started


def wait(http: httpx.Client, api: Api, deployment_id: int) -> dict[str, Any]:
    """The deployment once it went live or ended, or as it stands after OUTCOME_WAIT seconds:
    the server answers as soon as it has (`?wait=`), so nothing polls."""
    deadline = time.monotonic() + OUTCOME_WAIT
    headers = {"Authorization": f"Bearer {api.token}"}
    while True:
        left = max(int(deadline - time.monotonic()), 0)
        try:
            response = http.get(
                f"{api.url}/api/v1/deployments/{deployment_id}",
                params={"wait": left},
                headers=headers,
                timeout=httpx.Timeout(api.timeout, read=left + api.timeout),
            )
        except httpx.HTTPError as e:
            raise ClientError(f"cannot reach shipway at {api.url}: {e}") from e
        if response.status_code >= 400:
            raise ClientError(describe_error(response))
        deployment: dict[str, Any] = response.json()
        if _ended(deployment["status"]) or not left:
            return deployment


def settle(api: Api, deployment_id: int) -> dict[str, Any]:
    """`wait` on a connection of its own, for a change that has no build log to follow."""
    with api.client(timeout=api.timeout) as http:
        return wait(http, api, deployment_id)


def _ended(status: str) -> bool:
    """Live counts as an end here: the push is done once its release serves."""
    try:
        return settled(DeploymentStatus(status))
    except ValueError:
        return True


def outcome(deployment: dict[str, Any], build: str | None) -> tuple[str, int]:
    """What to tell the pusher once DEPLOYMENT ended (BUILD is its build's status, if the log
    said), and the exit code: 0 when it went live. The build log has told how the build went;
    this adds what it cannot know: the release, the URL, a failure after the build."""
    status, reason = deployment["status"], deployment.get("reason")
    release = f"Release v{deployment['release']}" if deployment.get("release") else "The release"
    because = f": {reason}" if reason else ""
    if status == DeploymentStatus.LIVE:
        return f"-----> {release} is live at {deployment['url']}", 0
    if status == DeploymentStatus.RETIRED:
        return f"-----> {release} went live; a newer deployment has since replaced it", 0
    if not _ended(status):
        follow = f"shipway builds logs {deployment.get('build_id')} -f"
        return f"-----> Still {status} after {OUTCOME_WAIT:.0f} s; follow it with: {follow}", 1
    verb = "failed" if status == DeploymentStatus.FAILED else f"was {status}"
    if build == "succeeded":
        return f"-----> Build succeeded, but the deployment {verb}{because}", 1
    return f"-----> Build {verb}{because}", 1


def released(what: str, deployment: dict[str, Any]) -> tuple[str, int]:
    """What to say once DEPLOYMENT of a change with no build (a rollback, a config change,
    named by WHAT: "the rollback of web") went live or ended, or the wait did; and the exit
    code, 0 when it went live."""
    status, release = deployment["status"], f"v{deployment['release']}"
    because = f": {deployment['reason']}" if deployment.get("reason") else ""
    if status == DeploymentStatus.LIVE:
        return f"{release} is live at {deployment['url']}", 0
    if status == DeploymentStatus.RETIRED:
        return f"{release} went live; a newer deployment has since replaced it", 0
    if not _ended(status):
        return (
            f"{what} is still {status}; see `shipway apps info {deployment['app']}` "
            f"or GET /api/v1/deployments/{deployment['id']}",
            1,
        )
    verb = "failed" if status == DeploymentStatus.FAILED else f"was {status}"
    return f"{what} ({release}) {verb}{because}", 1
