"""Send a source archive to the deployments API, show the build log live, report the outcome.

Both `git push` (from the pre-receive hook) and `shipway deploy` go through deploy_archive().
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from shipway.cli.builds import read_log
from shipway.cli.client import Api, CliError, describe_error

ENDED = ("live", "failed", "cancelled", "superseded", "retired")
OUTCOME_WAIT = 120.0


def deploy_archive(
    api: Api,
    app: str,
    archive: Iterable[bytes],
    *,
    out: Callable[[str], Any],
    ref: str | None = None,
    sha: str | None = None,
    source: str = "upload",
    environment: str | None = None,
) -> bool:
    """True when the deployment went live; every step is reported through OUT."""
    params = {
        k: v for k, v in {"ref": ref, "sha": sha, "source": source, "env": environment}.items() if v
    }
    try:
        response = httpx.post(
            f"{api.url}/api/v1/apps/{app}/deployments",
            params=params,
            content=archive,
            headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/x-tar"},
            timeout=httpx.Timeout(api.timeout, write=None),
        )
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach shipway at {api.url}: {e}") from e
    if response.status_code >= 400:
        raise CliError(describe_error(response))
    launched = response.json()
    out(f"-----> Deploying {app} to {launched['environment']} (build {launched['build_id']})")
    read_log(api, int(launched["build_id"]), follow=True, on_line=out)
    deployment = _outcome(api, int(launched["id"]))
    status = deployment["status"]
    if status == "live":
        out(f"-----> Release v{deployment['release']} is live in {deployment['environment']}")
        return True
    reason = f": {deployment['reason']}" if deployment.get("reason") else ""
    out(f"-----> Deployment {status}{reason}")
    return False


def _outcome(api: Api, deployment_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + OUTCOME_WAIT
    while True:
        deployment: dict[str, Any] = api.get(f"/deployments/{deployment_id}")
        if deployment["status"] in ENDED or time.monotonic() > deadline:
            return deployment
        time.sleep(0.05)
