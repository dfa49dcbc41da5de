"""Builds that outlast their builder, or come back to it: the warm cache, a builder lost
mid-build, a cancelled build's sandbox, a builder on another machine."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.e2e.builders import build_log, builder_of, fleet, releases, start_builder
from tests.e2e.conftest import Instance
from tests.e2e.test_push import api, make_repo, node_app, push, slow_node_app, wait_for
from tests.helpers import git, sandboxed

pytestmark = pytest.mark.e2e


def test_a_build_goes_back_to_the_builder_with_its_warm_cache(
    pooled: Instance, tmp_path: Path
) -> None:
    running = pooled
    first = start_builder(running, "--pool", "far", "--slots", "2")
    second = None
    try:
        warm = builder_of(running, first)["id"]
        assert running.cli("apps", "create", "cached", "--region", "far").returncode == 0
        repo = make_repo(
            tmp_path / "cached", {**slow_node_app(1), "Procfile": "web: node server.js"}
        )
        assert push(running, repo, "cached").returncode == 0
        second = start_builder(running, "--pool", "far", "--slots", "2")
        other = builder_of(running, second)["id"]
        for n in range(3):  # with both builders free, each goes back to the warm one
            (repo / "version.txt").write_text(f"{n}")
            git(repo, "add", "-A")
            git(repo, "commit", "-qm", f"v{n}")
            assert push(running, repo, "cached").returncode == 0
        built = api(running, "/apps/cached/builds")
        assert [b["builder"] for b in built] == [warm] * 4, built
        assert all(b["cache_warm"] for b in built[:3])

        first.send_signal(signal.SIGSTOP)  # the warm builder is there but takes nothing
        try:
            (repo / "version.txt").write_text("elsewhere")
            git(repo, "commit", "-qam", "elsewhere")
            assert push(running, repo, "cached").returncode == 0
        finally:
            first.send_signal(signal.SIGCONT)
        latest = api(running, "/apps/cached/builds")[0]
        assert latest["status"] == "succeeded" and latest["builder"] == other
    finally:
        for process in (first, second):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=60)


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
def test_a_build_whose_builder_is_lost_completes_on_another(
    pooled: Instance, tmp_path: Path, fault: str
) -> None:
    """Killed, or stopped (hung) until after the build has moved: the build completes on the
    other builder, once, and a hung builder that comes back publishes nothing."""
    running = pooled
    builders = [start_builder(running, "--pool", "lossy", "--slots", "1") for _ in range(2)]
    try:
        ids = {builder_of(running, b)["id"]: b for b in builders}
        app = f"fragile-{fault.lower()}"
        assert running.cli("apps", "create", app, "--region", "lossy").returncode == 0
        # Its own dependencies: not built from the layer of the other fault's app.
        files = {**node_app(f"sleep 5; echo {app}"), "Procfile": "web: node server.js"}
        repo = make_repo(tmp_path / app, files)
        pushed: dict[str, subprocess.CompletedProcess[str]] = {}
        pusher = threading.Thread(target=lambda: pushed.update(r=push(running, repo, app)))
        pusher.start()
        wait_for(lambda: sandboxed("sleep", "5"), 120, "the build to be under way")
        [building] = api(running, f"/apps/{app}/builds")
        victim = ids[building["builder"]]
        [survivor] = [i for i in ids if i != building["builder"]]
        victim.send_signal(getattr(signal, fault))
        wait_for(
            lambda: api(running, f"/apps/{app}/builds")[0]["builder"] == survivor,
            60,
            "the build to move to the other builder",
        )
        pusher.join(180)
        assert pushed["r"].returncode == 0, pushed["r"].stdout + pushed["r"].stderr
        if fault == "SIGSTOP":
            victim.send_signal(signal.SIGCONT)  # it wakes to find its build taken over
            wait_for(
                lambda: (
                    fleet(running)[building["builder"]]["state"] == "active"
                    and fleet(running)[building["builder"]]["busy"] == 0
                ),
                60,
                "the stopped builder to come back idle",
            )
        [built] = api(running, f"/apps/{app}/builds")
        assert built["status"] == "succeeded" and built["builder"] == survivor
        [release] = releases(running, app)
        assert release["version"] == 1
        log = build_log(running, built["id"])
        retried = f"-----> Retrying the build on {survivor}: the attempt on {building['builder']}"
        assert retried in log, log
        assert log.count("-----> Build succeeded") == 1, log
        [deployment] = api(running, f"/apps/{app}/deployments")
        assert deployment["status"] == "live"
    finally:
        for process in builders:
            process.kill()
            process.communicate(timeout=60)


def test_cancelling_a_build_kills_its_sandbox_on_its_builder(
    pooled: Instance, tmp_path: Path
) -> None:
    running = pooled
    builder = start_builder(running, "--pool", "away")
    try:
        builder_of(running, builder)
        assert running.cli("apps", "create", "doomed", "--region", "away").returncode == 0
        repo = make_repo(tmp_path / "doomed", slow_node_app(61))
        pushed: dict[str, subprocess.CompletedProcess[str]] = {}
        pusher = threading.Thread(target=lambda: pushed.update(r=push(running, repo, "doomed")))
        pusher.start()
        wait_for(lambda: sandboxed("sleep", "61"), 120, "the build to be under way")
        [build] = api(running, "/apps/doomed/builds")
        cancelled = running.cli("builds", "cancel", str(build["id"]))
        assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout, cancelled.stderr
        wait_for(lambda: not sandboxed("sleep", "61"), 30, "the sandbox to be killed")
        pusher.join(60)
        assert pushed["r"].returncode != 0
        [ended] = api(running, "/apps/doomed/builds")
        assert ended["status"] == "cancelled"
        [deployment] = api(running, "/apps/doomed/deployments")
        assert deployment["status"] == "cancelled"
        again = running.cli("builds", "cancel", str(build["id"]))
        assert again.returncode == 1 and "has ended already (cancelled)" in again.stderr
        unknown = running.cli("builds", "cancel", "999999")
        assert unknown.returncode == 1 and "no build" in unknown.stderr.lower()
        assert fleet(running)[build["builder"]]["busy"] == 0 or wait_for(
            lambda: fleet(running)[build["builder"]]["busy"] == 0, 30, "the slot to free"
        )
    finally:
        builder.send_signal(signal.SIGTERM)
        builder.communicate(timeout=60)


def test_a_builder_on_another_machine_works_through_the_control_plane(
    pooled: Instance, tmp_path: Path
) -> None:
    """`shipway builder --server URL`: no shared data dir; the source comes over HTTP, the
    layers go back over HTTP, verified, and the release runs from them."""
    running = pooled
    elsewhere = tmp_path / "elsewhere"
    env = {k: v for k, v in running.env.items() if k != "SHIPWAY_DATA"}
    env["SHIPWAY_TOKEN"] = running.token
    remote = subprocess.Popen(
        [sys.executable, "-m", "shipway", "builder", "--server", running.url, "--pool", "remote",
         "--data", str(elsewhere)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        joined = builder_of(running, remote)
        assert joined["pool"] == "remote"
        assert running.cli("apps", "create", "faraway", "--region", "remote").returncode == 0
        hushed = running.cli("env", "set", "HUSH=s3cr3t-value", "--app", "faraway", "--secret")
        assert hushed.returncode == 0, hushed.stderr
        files = {**node_app("echo the token is s3cr3t-value"), "Procfile": "web: node server.js"}
        repo = make_repo(tmp_path / "faraway", files)
        pushed = push(running, repo, "faraway")
        assert pushed.returncode == 0, pushed.stderr
        # Its log reached the push live, relayed by the control plane: the builder holds the
        # builder's key only, which writes no log.
        assert "the token is ***" in pushed.stderr and "Build succeeded" in pushed.stderr
        keys = sorted(p.name for p in (elsewhere / "nats" / "keys").iterdir())
        assert keys == ["builder.nk"]
        [built] = api(running, "/apps/faraway/builds")
        assert built["builder"] == joined["id"]
        assert (elsewhere / "sources" / f"{built['id']}.tar").is_file()
        [release] = api(running, "/apps/faraway/releases")
        assert release["layers"]
        for layer in release["layers"]:
            hexdigest = layer["digest"].removeprefix("sha256:")
            assert (running.data / "layers" / "sha256" / hexdigest).is_dir()
            assert (elsewhere / "layers" / "sha256" / hexdigest).is_dir()
        log = build_log(running, built["id"])
        assert "s3cr3t-value" not in log and "***" in log
        answer = httpx.get(running.url, headers={"Host": "faraway.localhost"}, timeout=30)
        assert answer.status_code == 200 and answer.text == "ok"
    finally:
        remote.send_signal(signal.SIGTERM)
        output, _ = remote.communicate(timeout=60)
    assert "drained" in output, output
