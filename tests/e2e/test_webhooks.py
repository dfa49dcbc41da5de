"""Webhooks end to end: a git host (a stand-in serving real repositories through git's own
http-backend and taking commit-status calls) delivers to a running `shipway up`, which
fetches the commit, builds it in a sandbox, deploys it and reports the outcome back."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from shipway.webhooks.verify import Provider
from tests.e2e.conftest import Instance, start, stop
from tests.e2e.test_push import EXAMPLES, api, slow_node_app, wait_for
from tests.githost import StandInHost
from tests.helpers import commit, git, sandboxed
from tests.webhooks import deliveries

pytestmark = pytest.mark.e2e

SECRET = "a webhook secret"
SETTLED = ("done", "failed")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandInHost]:
    with StandInHost(tmp_path_factory.mktemp("githost")) as running:
        yield running


def deliver(
    instance: Instance,
    provider: Provider,
    app: str,
    event: str,
    body: bytes,
    *,
    delivery: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = headers or deliveries.signed(provider, SECRET, event, body, delivery)
    return httpx.post(
        f"{instance.url}/hooks/{provider}/{app}", content=body, headers=sent, timeout=30
    )


def connected_app(instance: Instance, host: StandInHost, provider: Provider, app: str) -> str:
    """Create APP, connect it to a new repository on HOST; the repository's OWNER/NAME."""
    repo = f"acme/{app}"
    host.add_repo(repo)
    assert instance.cli("apps", "create", app).returncode == 0
    connected = instance.cli(
        "apps", "connect", app,
        "--provider", str(provider),
        "--repo", repo,
        "--secret", SECRET,
        "--token", host.token,
        "--api-url", host.api_url(provider),
    )  # fmt: skip
    assert connected.returncode == 0, connected.stderr
    assert f"/hooks/{provider}/{app}" in connected.stdout
    return repo


def working_copy(tmp: Path, host: StandInHost, repo: str, text: str) -> tuple[Path, str]:
    """A clone of REPO with a static site saying TEXT pushed to main; it and its sha."""
    work = tmp / "work"
    shutil.copytree(EXAMPLES / "static", work)
    (work / "index.html").write_text(text)
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", str(host.root / f"{repo}.git"))
    sha = commit(work, {"index.html": text}, "first")
    git(work, "push", "-q", "origin", "main")
    return work, sha


def pushed_branch(work: Path, branch: str, text: str) -> str:
    """BRANCH made from WORK's HEAD with the site saying TEXT, pushed; its sha."""
    git(work, "checkout", "-q", "-b", branch)
    sha = commit(work, {"index.html": text})
    git(work, "push", "-q", "origin", branch)
    return sha


def delivery_of(instance: Instance, app: str, delivery: str) -> dict[str, Any] | None:
    found = [d for d in api(instance, f"/apps/{app}/deliveries") if d["delivery_id"] == delivery]
    return found[0] if found else None


def settled(instance: Instance, app: str, delivery: str, timeout: float = 180) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        row = delivery_of(instance, app, delivery)
        return row if row and row["status"] in SETTLED else None

    row: dict[str, Any] = wait_for(done, timeout, f"delivery {delivery} to settle")
    return row


def page(instance: Instance, host_name: str) -> httpx.Response:
    return httpx.get(f"{instance.url}/", headers={"Host": host_name}, timeout=10)


def statuses_of(host: StandInHost, sha: str) -> list[tuple[str, str | None]]:
    return [(s.state, s.target_url) for s in host.statuses if s.sha == sha]


#: Each host's words for the states shipway reports.
PENDING = {"github": "pending", "gitlab": "running", "bitbucket": "INPROGRESS", "gitea": "pending"}
SUCCESS = {"github": "success", "gitlab": "success", "bitbucket": "SUCCESSFUL", "gitea": "success"}


@pytest.mark.parametrize("provider", list(Provider))
def test_a_push_is_fetched_built_deployed_and_reported(
    instance: Instance, host: StandInHost, tmp_path: Path, provider: Provider
) -> None:
    app = f"hooked-{provider}"
    repo = connected_app(instance, host, provider, app)
    _, sha = working_copy(tmp_path, host, repo, f"<h1>from {provider}</h1>")
    event, body = deliveries.push(provider, "main", sha)
    started = time.monotonic()
    answer = deliver(instance, provider, app, event, body, delivery=f"{provider}-push-1")
    answered = time.monotonic() - started
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "accepted"
    print(f"{provider} push answered in {answered * 1000:.0f} ms")

    row = settled(instance, app, f"{provider}-push-1")
    assert row["status"] == "done", row
    assert row["sha"] == sha and row["branch"] == "main"
    assert "to production live (fetched " in row["detail"], row
    url = f"http://{app}.localhost:{instance.port}"
    assert page(instance, f"{app}.localhost").text == f"<h1>from {provider}</h1>"
    reported = wait_for(
        lambda: len(statuses_of(host, sha)) >= 2 and statuses_of(host, sha), 60, "statuses"
    )
    assert reported == [(PENDING[provider], url), (SUCCESS[provider], url)]
    deployment = api(instance, f"/deployments/{row['deployment_id']}")
    assert (deployment["commit"], deployment["source"], deployment["status"]) == (
        sha,
        "git",
        "live",
    )

    # The host redelivers: answered 200, and nothing more happens.
    again = deliver(instance, provider, app, event, body, delivery=f"{provider}-push-1")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    time.sleep(1)
    assert len(api(instance, f"/apps/{app}/deliveries")) == 1
    assert len(statuses_of(host, sha)) == 2

    audit = instance.cli("audit", "search", "--action", "hook.delivery", "--json")
    assert audit.returncode == 0, audit.stderr
    assert f"{provider}-push-1" in audit.stdout and sha in audit.stdout
    info = instance.cli("apps", "info", app)
    assert f"{provider}-push-1" in info.stdout and f"{provider} {repo}" in info.stdout


def test_pull_requests_and_branches_get_previews_torn_down_when_done(
    instance: Instance, host: StandInHost, tmp_path: Path
) -> None:
    provider = Provider.GITHUB
    app = "prs"
    repo = connected_app(instance, host, provider, app)
    work, main_sha = working_copy(tmp_path, host, repo, "main")
    sha = pushed_branch(work, "feature", "feature")

    event, body = deliveries.pull(provider, True, 7, "feature", sha)
    assert deliver(instance, provider, app, event, body, delivery="pr-7-opened").status_code == 202
    assert settled(instance, app, "pr-7-opened")["status"] == "done"
    assert page(instance, f"{app}--pr-7.localhost").text == "feature"
    preview = f"http://{app}--pr-7.localhost:{instance.port}"
    assert wait_for(lambda: ("success", preview) in statuses_of(host, sha), 60, "the PR status")

    event, body = deliveries.push(provider, "feature", sha)
    assert deliver(instance, provider, app, event, body, delivery="feature-push").status_code == 202
    assert settled(instance, app, "feature-push")["status"] == "done"
    assert page(instance, f"{app}--feature.localhost").text == "feature"

    event, body = deliveries.pull(provider, False, 7, "feature", sha)
    assert deliver(instance, provider, app, event, body, delivery="pr-7-closed").status_code == 202
    closed = settled(instance, app, "pr-7-closed")
    assert closed["status"] == "done" and "removed its preview pr-7" in closed["detail"]
    assert page(instance, f"{app}--pr-7.localhost").status_code == 404

    event, body = deliveries.deleted(provider, "feature")
    assert deliver(instance, provider, app, event, body, delivery="feature-gone").status_code == 202
    assert "removed its preview feature" in settled(instance, app, "feature-gone")["detail"]
    assert page(instance, f"{app}--feature.localhost").status_code == 404
    environments = [e["name"] for e in api(instance, f"/apps/{app}")["environments"]]
    assert "pr-7" not in environments and "feature" not in environments

    ping = deliver(instance, provider, app, "ping", b'{"zen": "Design for failure.", "hook_id": 1}')
    assert ping.status_code == 200 and ping.json()["status"] == "ignored"
    assert main_sha not in [s.sha for s in host.statuses]  # main was never delivered


def test_a_host_that_fails_status_calls_is_retried_and_never_fails_the_deployment(
    instance: Instance, host: StandInHost, tmp_path: Path
) -> None:
    provider = Provider.GITEA
    app = "flaky-host"
    repo = connected_app(instance, host, provider, app)
    _, sha = working_copy(tmp_path, host, repo, "despite the host")
    host.fail_statuses(3)
    event, body = deliveries.push(provider, "main", sha)
    assert deliver(instance, provider, app, event, body, delivery="flaky-1").status_code == 202
    row = settled(instance, app, "flaky-1")
    assert row["status"] == "done"
    assert page(instance, f"{app}.localhost").text == "despite the host"
    url = f"http://{app}.localhost:{instance.port}"
    assert wait_for(lambda: ("success", url) in statuses_of(host, sha), 120, "the retried status")
    assert statuses_of(host, sha) == [("pending", url), ("success", url)]
    assert delivery_of(instance, app, "flaky-1")["reported"] == "success"  # type: ignore[index]


def test_a_commit_the_host_does_not_have_fails_the_delivery_and_says_so(
    instance: Instance, host: StandInHost, tmp_path: Path
) -> None:
    provider = Provider.GITLAB
    app = "missing-commit"
    repo = connected_app(instance, host, provider, app)
    working_copy(tmp_path, host, repo, "x")
    ghost = "1" * 40
    event, body = deliveries.push(provider, "main", ghost)
    assert deliver(instance, provider, app, event, body, delivery="ghost").status_code == 202
    row = settled(instance, app, "ghost")
    assert row["status"] == "failed" and "not deployed" in row["detail"]
    assert host.token not in row["detail"]
    assert wait_for(lambda: statuses_of(host, ghost), 60, "the failure status")[0][0] == "failed"


def test_a_bitbucket_pull_request_naming_its_commit_by_12_digits_gets_its_preview(
    instance: Instance, host: StandInHost, tmp_path: Path
) -> None:
    provider = Provider.BITBUCKET
    app = "bb-pulls"
    repo = connected_app(instance, host, provider, app)
    work, _ = working_copy(tmp_path, host, repo, "main")
    sha = pushed_branch(work, "branch2", "pull request three")
    event, body = deliveries.pull(provider, True, 3, "branch2", sha[:12])
    assert deliver(instance, provider, app, event, body, delivery="bb-pr-3").status_code == 202
    row = settled(instance, app, "bb-pr-3")
    assert row["status"] == "done", row
    assert page(instance, f"{app}--pr-3.localhost").text == "pull request three"
    preview = f"http://{app}--pr-3.localhost:{instance.port}"
    assert wait_for(lambda: ("SUCCESSFUL", preview) in statuses_of(host, sha), 60, "the status")
    assert api(instance, f"/deployments/{row['deployment_id']}")["commit"] == sha


def test_a_delivery_under_way_when_shipway_is_killed_ends_after_the_restart(
    host: StandInHost, tmp_path: Path
) -> None:
    running = start(tmp_path, "hooks-durable")
    try:
        provider = Provider.GITHUB
        app = "durable-hook"
        repo = connected_app(running, host, provider, app)
        work, _ = working_copy(tmp_path, host, repo, "x")
        sha = commit(work, slow_node_app(8))
        git(work, "push", "-q", "origin", "main")
        event, body = deliveries.push(provider, "main", sha)
        assert deliver(running, provider, app, event, body, delivery="durable").status_code == 202
        state = json.loads((running.data / "run" / "state.json").read_text())
        wait_for(lambda: sandboxed("sleep", "8", under=state["pid"]), 120, "the build to run")
        psutil.Process(state["pid"]).kill()
        running = start(tmp_path, "hooks-durable")
        row = settled(running, app, "durable")
        assert row["status"] == "done", row
        final = wait_for(lambda: statuses_of(host, sha)[1:], 60, "the final status")
        # The address is the one known at launch (this test restarts on another port).
        assert final[0][0] == "success" and final[0][1].startswith(f"http://{app}.localhost:")
    finally:
        stop(running)
