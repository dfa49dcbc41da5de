"""git push → sandboxed build → release, through a real `shipway up`, git, bubblewrap,
Temporal and NATS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import Instance, shipway, start, stop
from tests.helpers import commit, git, sandboxed

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def make_repo(path: Path, files: dict[str, str] | None = None, example: str | None = None) -> Path:
    if example:
        shutil.copytree(EXAMPLES / example, path)
    path.mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "first")
    return path


def push(
    instance: Instance,
    repo: Path,
    app: str,
    *refspec: str,
    token: str | None = None,
    force: bool = False,
) -> subprocess.CompletedProcess[str]:
    url = f"http://shipway:{token or instance.token}@127.0.0.1:{instance.port}/git/{app}.git"
    args = ["push", *(["--force"] if force else []), url, *(refspec or ("main",))]
    return git(repo, *args, check=False)


def api(instance: Instance, path: str) -> Any:
    response = httpx.get(
        f"{instance.url}/api/v1{path}",
        headers={"Authorization": f"Bearer {instance.token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def wait_for(predicate, timeout: float, what: str, *, fail: bool = True) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    if fail:
        pytest.fail(f"timed out waiting for {what}")
    return None


def test_push_builds_a_release_with_a_warm_cache_and_live_log(
    instance: Instance, tmp_path: Path
) -> None:
    assert instance.cli("apps", "create", "flask-app").returncode == 0
    repo = make_repo(tmp_path / "flask", example="flask")

    cold = push(instance, repo, "flask-app")
    assert cold.returncode == 0, cold.stderr
    out = cold.stderr
    assert "remote: -----> python app detected" in out
    assert "remote: -----> Installing dependencies from requirements.txt" in out, out
    assert "Successfully installed" in out and "flask" in out.lower()
    assert "Build succeeded" in out

    [deployment] = api(instance, "/apps/flask-app/deployments")
    assert deployment["status"] == "live" and deployment["release"] == 1
    assert deployment["workflow_id"] == "deploy/flask-app/production"
    [build] = api(instance, "/apps/flask-app/builds")
    assert build["status"] == "succeeded" and build["cache_warm"] is False
    assert set(build["steps"]) >= {"checkout", "dependencies", "app_layer"}
    [release] = api(instance, "/apps/flask-app/releases")
    assert release["processes"]["web"].startswith("gunicorn")
    roles = {layer["role"]: layer["digest"] for layer in release["layers"]}
    assert set(roles) == {"app", "deps"}
    for digest in roles.values():
        assert (instance.data / "layers" / "sha256" / digest.removeprefix("sha256:")).is_dir()

    sha = commit(repo, {"app.py": (repo / "app.py").read_text() + "\n# warm\n"})
    warm = push(instance, repo, "flask-app")
    assert warm.returncode == 0, warm.stderr
    assert "Dependencies unchanged (requirements.txt): reusing layer" in warm.stderr
    assert "Installing dependencies" not in warm.stderr
    builds = api(instance, "/apps/flask-app/builds")
    assert builds[0]["cache_warm"] is True and builds[0]["commit"] == sha
    releases = api(instance, "/apps/flask-app/releases")
    new = {layer["role"]: layer["digest"] for layer in releases[0]["layers"]}
    assert new["deps"] == roles["deps"] and new["app"] != roles["app"]

    logs = instance.cli("builds", "logs", str(builds[0]["id"]))
    assert logs.returncode == 0, logs.stderr
    assert "Dependencies unchanged" in logs.stdout

    listed = json.loads(instance.cli("releases", "list", "--app", "flask-app", "--json").stdout)
    assert [r["version"] for r in listed] == [2, 1]
    assert json.loads(instance.cli("builds", "list", "--app", "flask-app", "--json").stdout)


def test_a_node_apps_build_output_is_served(instance: Instance, tmp_path: Path) -> None:
    """examples/node: `npm run build` writes dist/ after `npm ci`, and the app serves it."""
    assert instance.cli("apps", "create", "node-built").returncode == 0
    repo = make_repo(tmp_path / "node", example="node")
    pushed = push(instance, repo, "node-built")
    assert pushed.returncode == 0, pushed.stderr
    assert "-----> Running build: npm run build" in pushed.stderr
    assert "built dist/about.html" in pushed.stderr
    served = httpx.get(
        f"{instance.url}/about.html", headers={"Host": "node-built.localhost"}, timeout=30
    )
    assert served.status_code == 200 and "Built by npm run build" in served.text
    [build] = api(instance, "/apps/node-built/builds")
    assert "build" in build["steps"]


def test_the_same_source_gets_the_same_app_layer(instance: Instance, tmp_path: Path) -> None:
    assert instance.cli("apps", "create", "same-src").returncode == 0
    repo = make_repo(tmp_path / "site", example="static")
    assert push(instance, repo, "same-src").returncode == 0
    upload = instance.cli("deploy", str(repo), "--app", "same-src", "--env", "copy")
    assert upload.returncode == 0, upload.stdout + upload.stderr
    first, second = api(instance, "/apps/same-src/releases")
    assert first["layers"] == second["layers"]
    assert first["stack"] == second["stack"] == "static"


def test_branches_force_pushes_and_failures(instance: Instance, tmp_path: Path) -> None:
    assert instance.cli("apps", "create", "branchy").returncode == 0
    repo = make_repo(tmp_path / "b", example="static")
    assert push(instance, repo, "branchy").returncode == 0

    git(repo, "checkout", "-qb", "feature/login")
    commit(repo, {"index.html": "<p>feature"})
    assert push(instance, repo, "branchy", "feature/login").returncode == 0
    envs = {e["name"]: e for e in api(instance, "/apps/branchy")["environments"]}
    assert envs["feature-login"]["kind"] == "preview"
    assert envs["feature-login"]["url"].startswith("http://branchy--feature-login.")

    git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    forced = push(instance, repo, "branchy", "feature/login", force=True)
    assert forced.returncode == 0, forced.stderr

    (repo / "index.html").unlink()
    commit(repo, {"README.md": "no site here"})
    failed = push(instance, repo, "branchy", "feature/login")
    assert failed.returncode != 0
    assert "no recognised stack: shipway looked for" in failed.stderr
    assert "requirements.txt or pyproject.toml" in failed.stderr
    remote = git(
        repo,
        "ls-remote",
        f"http://shipway:{instance.token}@127.0.0.1:{instance.port}/git/branchy.git",
    )
    assert git(repo, "rev-parse", "HEAD").stdout.strip() not in remote.stdout


def test_pushes_that_are_refused(instance: Instance, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", example="static")
    unknown = push(instance, repo, "no-such-app")
    assert unknown.returncode != 0 and "no app named 'no-such-app'" in unknown.stderr
    assert instance.cli("apps", "create", "guarded").returncode == 0
    bad = push(instance, repo, "guarded", token="swt_not-valid")
    assert bad.returncode != 0
    assert "401" in bad.stderr or "Authentication failed" in bad.stderr


def test_a_newer_push_supersedes_a_running_build(instance: Instance, tmp_path: Path) -> None:
    assert instance.cli("apps", "create", "slow").returncode == 0
    app = slow_node_app(300)
    repo = make_repo(tmp_path / "slow", {**app, "Procfile": "web: node server.js"})
    first: dict[str, subprocess.CompletedProcess[str]] = {}
    pusher = threading.Thread(target=lambda: first.update(r=push(instance, repo, "slow")))
    pusher.start()
    building = wait_for(
        lambda: [d for d in api(instance, "/apps/slow/deployments") if d["status"] == "building"],
        120,
        "the first build to start",
    )
    wait_for(lambda: _sleepers(), 60, "the slow install step to run")
    commit(repo, {"package.json": app["package.json"].replace('"sleep 300"', '"true"')})
    second = push(instance, repo, "slow")
    pusher.join(timeout=120)
    assert second.returncode == 0, second.stderr
    old = api(instance, f"/deployments/{building[0]['id']}")
    assert old["status"] == "superseded"
    assert first["r"].returncode != 0 and "superseded" in first["r"].stderr
    if not wait_for(lambda: not _sleepers(), 30, "", fail=False):
        pytest.fail(f"the superseded build's processes outlived it: {_describe(_sleepers())}")


def slow_node_app(seconds: int) -> dict[str, str]:
    """A Node app whose install step runs `sleep SECONDS` in the sandbox."""
    return node_app(f"sleep {seconds}")


def node_app(postinstall: str) -> dict[str, str]:
    """A Node app with no dependencies whose install step runs POSTINSTALL in the sandbox
    (where it sees the package files only)."""
    scripts = {"postinstall": postinstall, "start": "node server.js"}
    package = {"name": "s", "version": "1.0.0", "scripts": scripts}
    lock = {
        "name": "s",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": "s", "version": "1.0.0"}},
    }
    server = "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)\n"
    return {
        "package.json": json.dumps(package),
        "package-lock.json": json.dumps(lock),
        "server.js": server,
    }


def _describe(pids: list[int]) -> list[str]:
    """Each process with its ancestry and PID namespace: what kept it alive."""
    shown = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            chain = [f"{p.pid}:{' '.join(p.cmdline())[:60]}" for p in proc.parents()]
            shown.append(
                f"{pid} ({proc.status()}, pidns {os.readlink(f'/proc/{pid}/ns/pid')}) < {chain}"
            )
        except (psutil.Error, OSError) as e:
            shown.append(f"{pid}: {e}")
    return shown


def _sleepers() -> list[int]:
    return sandboxed("sleep", "300")


def test_a_killed_builder_is_retried_and_the_deployment_ends(tmp_path: Path) -> None:
    running = start(tmp_path, "durable")
    try:
        assert running.cli("apps", "create", "durable").returncode == 0
        repo = make_repo(tmp_path / "d", slow_node_app(8))
        pusher = threading.Thread(target=lambda: push(running, repo, "durable"))
        pusher.start()
        state = json.loads((running.data / "run" / "state.json").read_text())
        wait_for(lambda: sandboxed("sleep", "8", under=state["pid"]), 120, "the build to run")
        psutil.Process(state["pid"]).kill()
        pusher.join(timeout=60)
        running = start(tmp_path, "durable")
        final = wait_for(
            lambda: [
                d
                for d in api(running, "/apps/durable/deployments")
                if d["status"] in ("live", "failed")
            ],
            180,
            "the deployment to end",
        )
        assert final[0]["status"] == "live"
        [build] = api(running, "/apps/durable/builds")
        logs = running.cli("builds", "logs", str(build["id"]))
        assert "-----> Retrying the build on " in logs.stdout, logs.stdout
    finally:
        stop(running)


def test_size_limit_and_build_timeout(tmp_path: Path) -> None:
    running = start(tmp_path, "limits", SHIPWAY_MAX_SOURCE_MB="1", SHIPWAY_BUILD_TIMEOUT="3")
    try:
        assert running.cli("apps", "create", "big").returncode == 0
        import os

        repo = make_repo(tmp_path / "big", example="static")
        (repo / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "big")
        too_big = push(running, repo, "big")
        assert too_big.returncode != 0 and "1 MiB limit" in too_big.stderr

        hang = make_repo(tmp_path / "hang", slow_node_app(600))
        hung = push(running, hang, "big")
        assert hung.returncode != 0
        assert "timed out after 3 s" in hung.stderr
        [build, *_] = api(running, "/apps/big/builds")
        assert build["status"] == "failed" and "timed out" in build["error"]
        assert shipway("status", env=running.env).returncode == 0
    finally:
        stop(running)
