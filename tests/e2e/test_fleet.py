"""The builder fleet with real processes: `shipway builder` beside a running shipway, seen in
`shipway builders list`, drained through the fleet or by SIGTERM, sent builds by the rules."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.builders import build_log, builder_of, fleet, releases, start_builder
from tests.e2e.conftest import Instance, shipway
from tests.e2e.test_push import api, make_repo, node_app, push, slow_node_app, wait_for
from tests.helpers import sandboxed

pytestmark = pytest.mark.e2e


def test_a_builder_joins_the_fleet_and_drains_when_asked(instance: Instance) -> None:
    process = start_builder(
        instance, "--pool", "default", "--labels", "region=eu,size=l", "--slots", "3"
    )
    try:
        joined = builder_of(instance, process)
        assert joined["pool"] == "default" and joined["labels"] == {"region": "eu", "size": "l"}
        assert joined["slots"] == 3 and joined["busy"] == 0 and joined["state"] == "active"
        assert joined["heartbeat_age"] < 15 and joined["version"]
        assert any(
            b["state"] == "active" for b in fleet(instance).values() if b["id"] != joined["id"]
        )
        drained = instance.cli("builders", "drain", joined["id"])
        assert drained.returncode == 0, drained.stderr
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert f"Builder {joined['id']} drained." in output
    listed = instance.cli("builders", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [shown] = [b for b in json.loads(listed.stdout) if b["id"] == joined["id"]]
    assert shown["state"] == "drained" and shown["pool"] == "default"


def test_sigterm_drains_a_builder(instance: Instance) -> None:
    process = start_builder(instance, "--pool", "eu")
    try:
        joined = builder_of(instance, process)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0 and "drained" in output, output
    assert fleet(instance)[joined["id"]]["state"] == "drained"


def test_the_fleet_is_for_platform_owners_and_bad_input_is_named(instance: Instance) -> None:
    made = httpx.post(
        f"{instance.url}/api/v1/orgs",
        json={"name": "fleetless"},
        headers={"Authorization": f"Bearer {instance.token}"},
    ).json()
    refused = httpx.get(
        f"{instance.url}/api/v1/builders",
        headers={"Authorization": f"Bearer {made['owner_token']}"},
    )
    assert refused.status_code == 403 and "platform owner" in refused.text
    unknown = instance.cli("builders", "drain", "no-such-builder")
    assert unknown.returncode == 1 and "no builder 'no-such-builder'" in unknown.stderr
    bad = instance.cli("builder", "--labels", "region")
    assert bad.returncode == 1 and "labels are k=v pairs" in bad.stderr


def test_rules_send_a_build_to_its_pool_where_it_waits_for_a_builder(
    pooled: Instance, tmp_path: Path
) -> None:
    running = pooled
    builder = None
    try:
        shown = running.cli("fleet", "rules")
        assert shown.returncode == 0 and "plan=pro" in shown.stdout and "fast" in shown.stdout
        assert running.cli("apps", "create", "paid", "--plan", "pro").returncode == 0
        repo = make_repo(tmp_path / "site", {"shipway.yml": "build: {needs: [eu-registry]}\n"},
                         example="static")  # fmt: skip
        pushed: dict[str, subprocess.CompletedProcess[str]] = {}
        pusher = threading.Thread(target=lambda: pushed.update(r=push(running, repo, "paid")))
        pusher.start()

        def waiting() -> dict[str, Any] | None:
            builds = api(running, "/apps/paid/builds")
            return builds[0] if builds and builds[0]["waiting"] else None

        queued = wait_for(waiting, 60, "the build to wait for a builder of its pool")
        assert queued["pool"] == "fast" and queued["status"] == "queued"
        assert queued["waiting"] == "pool fast has no live builder; the build waits for one"
        listed = running.cli("builds", "list", "--app", "paid")
        assert f"Build {queued['id']} waits: pool fast has no live builder" in listed.stdout

        builder = start_builder(running, "--pool", "fast")
        joined = builder_of(running, builder)
        pusher.join(120)
        assert pushed["r"].returncode == 0, pushed["r"].stderr
        # The log reached the push live, relayed through the API: the builder holds the
        # builder's key, which writes no log.
        assert f"Building on {joined['id']}" in pushed["r"].stderr
        [built] = api(running, "/apps/paid/builds")
        assert built["status"] == "succeeded" and built["builder"] == joined["id"]
        assert built["pool"] == "fast" and built["waiting"] is None
    finally:
        if builder is not None:
            builder.send_signal(signal.SIGTERM)
            builder.communicate(timeout=60)


def test_a_builder_drained_mid_build_finishes_the_build_first(
    pooled: Instance, tmp_path: Path
) -> None:
    running = pooled
    builder = start_builder(running, "--pool", "slow", "--slots", "1")
    try:
        joined = builder_of(running, builder)
        assert running.cli("apps", "create", "patient", "--region", "slow").returncode == 0
        repo = make_repo(
            tmp_path / "patient", {**slow_node_app(6), "Procfile": "web: node server.js"}
        )
        pushed: dict[str, subprocess.CompletedProcess[str]] = {}
        pusher = threading.Thread(target=lambda: pushed.update(r=push(running, repo, "patient")))
        pusher.start()
        wait_for(lambda: sandboxed("sleep", "6"), 120, "the build to be under way")
        assert running.cli("builders", "drain", joined["id"]).returncode == 0
        wait_for(
            lambda: fleet(running)[joined["id"]]["state"] == "draining", 30, "the builder to drain"
        )
        output, _ = builder.communicate(timeout=120)  # it exits once the build is done
        pusher.join(120)
        assert pushed["r"].returncode == 0, pushed["r"].stderr
        [built] = api(running, "/apps/patient/builds")
        assert built["status"] == "succeeded" and built["builder"] == joined["id"]
        assert builder.returncode == 0 and f"Builder {joined['id']} drained." in output
        assert fleet(running)[joined["id"]]["state"] == "drained"
    finally:
        builder.kill()


def test_the_builder_api_refuses_what_is_not_a_layer(instance: Instance) -> None:
    auth = {"Authorization": f"Bearer {instance.token}"}
    base = f"{instance.url}/api/v1/builder"
    zero = "sha256:" + "0" * 64
    junk = httpx.put(f"{base}/layers/{zero}", content=b"not a tar", headers=auth)
    assert junk.status_code == 422 and "not a layer archive" in junk.text
    named = httpx.put(f"{base}/layers/nope", content=b"", headers=auth)
    assert named.status_code == 422 and "not a layer digest" in named.text
    assert httpx.head(f"{base}/layers/{zero}", headers=auth).status_code == 404
    lines = httpx.post(f"{base}/builds/1/log", json={"lines": [[0, "x"]]}, headers=auth)
    assert lines.status_code == 422
    tenant = httpx.post(f"{instance.url}/api/v1/orgs", json={"name": "nobuilders"}, headers=auth)
    other = {"Authorization": f"Bearer {tenant.json()['owner_token']}"}
    assert httpx.get(f"{base}/connect", headers=other).status_code == 403
    assert httpx.get(f"{base}/connect").status_code == 401
    env = {k: v for k, v in instance.env.items() if k != "SHIPWAY_TOKEN"}
    tokenless = shipway("builder", "--server", instance.url, env=env)
    assert tokenless.returncode == 1 and "needs a platform owner's token" in tokenless.stderr


def test_upgrading_a_builder_under_load_loses_no_build(pooled: Instance, tmp_path: Path) -> None:
    """Builds running on two builders and more queued; one is drained and a new one started
    in its place, as in an upgrade: every build succeeds, once."""
    running = pooled
    old, other = (start_builder(running, "--pool", "busy", "--slots", "2") for _ in range(2))
    new = None
    try:
        ids = {builder_of(running, b)["id"]: b for b in (old, other)}
        apps = [f"load{n}" for n in range(4)]
        pushed: dict[str, subprocess.CompletedProcess[str]] = {}
        pushers = []
        for app in apps:  # each its own dependencies: none is built from another's layer
            assert running.cli("apps", "create", app, "--region", "busy").returncode == 0
            files = {**node_app(f"sleep 9; echo {app}"), "Procfile": "web: node server.js"}
            repo = make_repo(tmp_path / app, files)

            def push_it(app: str = app, repo: Path = repo) -> None:
                pushed[app] = push(running, repo, app)

            pushers.append(threading.Thread(target=push_it))
        for pusher in pushers:
            pusher.start()
        wait_for(lambda: len(sandboxed("sleep", "9")) >= 2, 120, "builds under way")
        busy = wait_for(
            lambda: {i: b for i, b in fleet(running).items() if i in ids and b["busy"]},
            30,
            "a builder to say it is busy",
        )
        retiring = max(busy, key=lambda i: busy[i]["busy"])
        started = {b["id"] for app in apps for b in api(running, f"/apps/{app}/builds")
                   if b["builder"] == retiring}  # fmt: skip
        assert running.cli("builders", "drain", retiring).returncode == 0
        new = start_builder(running, "--pool", "busy", "--slots", "2")
        builder_of(running, new)
        output, _ = ids[retiring].communicate(timeout=180)
        assert f"Builder {retiring} drained." in output
        for pusher in pushers:
            pusher.join(300)
        for app in apps:
            assert pushed[app].returncode == 0, pushed[app].stderr
            [built] = api(running, f"/apps/{app}/builds")
            assert built["status"] == "succeeded"
            assert built["id"] not in started or built["builder"] == retiring
            assert len(releases(running, app)) == 1
            assert "Retrying" not in build_log(running, built["id"])
    finally:
        for process in (old, other, new):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=120)
