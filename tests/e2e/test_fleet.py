"""The builder fleet with real processes: `shipway builder` beside a running shipway, seen in
`shipway builders list`, drained through the fleet or by SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from shipway.embedded.ports import any_free
from tests.e2e.conftest import Instance, assert_gone, clean_env, shipway, start, stop
from tests.e2e.test_push import api, make_repo, node_app, push, slow_node_app, wait_for
from tests.helpers import git, sandboxed

pytestmark = pytest.mark.e2e


POOLS = ("slow", "far", "lossy", "away", "remote", "busy")


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """One shipway whose rules send each test's apps to a pool of its own (by region), for
    the tests that run their own builders."""
    tmp = tmp_path_factory.mktemp("pooled")
    rules = tmp / "fleet.yml"
    rules.write_text(
        "rules:\n  - {plan: pro, pool: fast}\n  - {needs: eu-registry, pool: eu}\n"
        + "".join(f"  - {{region: {pool}, pool: {pool}}}\n" for pool in POOLS)
    )
    running = start(tmp, "pooled", SHIPWAY_FLEET_RULES=str(rules))
    yield running
    stop(running)


def fleet(instance: Instance) -> dict[str, dict[str, Any]]:
    listed = instance.cli("builders", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {b["id"]: b for b in json.loads(listed.stdout)}


def start_builder(instance: Instance, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shipway", "builder", "--data", str(instance.data), *args],
        env=instance.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def builder_of(instance: Instance, process: subprocess.Popen[str]) -> dict[str, Any]:
    def mine() -> dict[str, Any] | None:
        return next(
            (b for b in fleet(instance).values() if b["id"].endswith(f"-{process.pid}")), None
        )

    return wait_for(mine, 60, "the builder to join the fleet")  # type: ignore[no-any-return]


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
    assert fleet(instance)[joined["id"]]["state"] == "drained"


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


def releases(instance: Instance, app: str) -> list[dict[str, Any]]:
    return api(instance, f"/apps/{app}/releases")  # type: ignore[no-any-return]


def build_log(instance: Instance, build_id: int) -> str:
    shown = instance.cli("builds", "logs", str(build_id))
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


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
        repo = make_repo(tmp_path / app, {**slow_node_app(5), "Procfile": "web: node server.js"})
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


def local_builders(instance: Instance) -> list[psutil.Process]:
    """The `shipway builder` processes the server runs beside itself."""
    state = json.loads((instance.data / "run" / "state.json").read_text())
    return [
        p
        for p in psutil.Process(state["pid"]).children()
        if "builder" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE
    ]


def test_up_runs_the_builders_asked_for_and_keeps_them_running(tmp_path: Path) -> None:
    running = start(tmp_path, "three", SHIPWAY_BUILDERS="3")
    try:

        def active() -> set[str]:
            return {i for i, b in fleet(running).items() if b["state"] == "active"}

        three = wait_for(lambda: len(active()) == 3 and active(), 60, "three builders")
        [crashed, _] = local_builders(running)
        crashed.kill()  # a builder that dies unasked is started again
        wait_for(lambda: len(active()) == 3 and active() != three, 60, "the builder to be replaced")
        assert [p.pid for p in local_builders(running)] != []
        children = local_builders(running)
    finally:
        stop(running)
    assert_gone([p.pid for p in children])
    none = start(tmp_path, "none", SHIPWAY_BUILDERS="0")
    try:
        assert fleet(none) == {}
        bad = none.cli("up", "--builders", "-1")
        assert bad.returncode != 0 and "at least 0" in bad.stdout + bad.stderr
    finally:
        stop(none)


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_autoscaler_wakes_an_idle_pool_then_scales_it_to_zero(tmp_path: Path) -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    asked = tmp_path / "asked.txt"
    script = tmp_path / "scale.py"
    script.write_text(
        f"import sys\nopen({str(asked)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
    )
    rules = tmp_path / "fleet.yml"
    rules.write_text(
        "rules:\n  - {region: burst, pool: burst}\n"
        "pools:\n"
        "  burst: {min: 0, max: 2, idle_after: 1}\n"
        f"  cloud: {{min: 2, max: 5, command: '{sys.executable} {script}'}}\n"
        f"  hooked: {{min: 1, webhook: 'http://127.0.0.1:{hook.server_port}/scale'}}\n"
    )
    running = start(tmp_path, "autoscaled", SHIPWAY_FLEET_RULES=str(rules))
    try:
        wait_for(lambda: asked.exists() and "cloud 2" in asked.read_text(), 30, "the command")
        wait_for(lambda: Hook.received, 30, "the webhook")
        assert Hook.received[0]["pool"] == "hooked" and Hook.received[0]["desired"] == 1
        assert Hook.received[0]["load"]["builders"] == 0
        pools = {p["pool"]: p for p in api(running, "/fleet/pools")}
        assert pools["burst"]["builders"] == 0 and pools["burst"]["desired"] == 0
        assert pools["cloud"]["desired"] == 2 and pools["cloud"]["policy"]["max"] == 5

        assert running.cli("apps", "create", "bursty", "--region", "burst").returncode == 0
        repo = make_repo(tmp_path / "bursty", example="static")
        pushed = push(running, repo, "bursty")  # queued for a pool of no builder: it wakes
        assert pushed.returncode == 0, pushed.stderr
        [built] = api(running, "/apps/bursty/builds")
        assert (
            built["status"] == "succeeded" and fleet(running)[built["builder"]]["pool"] == "burst"
        )
        wait_for(
            lambda: fleet(running)[built["builder"]]["state"] == "drained",
            60,
            "the idle pool to scale to zero",
        )
        shown = running.cli("fleet", "pools")
        assert shown.returncode == 0 and "burst" in shown.stdout and "0-2 at 70%" in shown.stdout
        metrics = httpx.get(
            f"{running.url}/metrics", headers={"Authorization": f"Bearer {running.token}"}
        )
        assert metrics.status_code == 200
        assert 'shipway_pool_builders{pool="burst"} 0' in metrics.text
        assert 'shipway_pool_desired_builders{pool="cloud"} 2' in metrics.text
        assert 'shipway_pool_slots{pool="default"} 2' in metrics.text
        assert httpx.get(f"{running.url}/metrics").status_code == 401
    finally:
        hook.shutdown()
        stop(running)


def test_a_bad_pool_policy_stops_shipway_from_starting(tmp_path: Path) -> None:
    rules = tmp_path / "fleet.yml"
    rules.write_text("pools:\n  burst: {min: 3, max: 1}\n")
    env = clean_env(tmp_path, SHIPWAY_FLEET_RULES=str(rules), SHIPWAY_DATA=str(tmp_path / "d"))
    result = shipway("up", "--port", str(any_free()), env=env, timeout=60)
    assert result.returncode != 0
    assert "pool burst: min (3) is more than max (1)" in result.stdout + result.stderr


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
