"""Releases run as sandboxed instances behind the router: health checks, switches, failures,
crashes, scaling, sleeping and waking, and coming back after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shipway.router import RouteTable
from shipway.runtime import agent, netns
from shipway.runtime.agent import Runtime
from shipway.runtime.instance import InstanceFailed
from shipway.sandbox import network
from shipway.store.tables import App
from tests.helpers import hidden_path, until
from tests.runtime.conftest import WEB, Node

pytestmark = pytest.mark.integration

HOST = "shop.localhost"


async def test_a_release_goes_live_with_its_config_and_port(node: Node) -> None:
    node.create_app("shop")
    node.set_config("shop", {"GREETING": "hello"})
    node.set_config("shop", {"API_KEY": "s3cr3t-value"}, secret=True)
    await node.deploy("shop", WEB)
    answer = (await node.get(HOST)).json()
    assert answer["release"] == "v1" and answer["process"] == "web.1"
    assert answer["greeting"] == "hello" and answer["secret"] == "s3cr3t-value"
    assert answer["port"] is not None
    assert answer["uid"] != 0
    log = await until(lambda: [line for line in node.app_log("shop") if "booting" in line])
    assert log == ["web.1: booting web.1 key ***"], "secrets are masked in the app's log"


async def test_an_instance_sees_only_its_release_read_only(node: Node) -> None:
    node.create_app("shop")
    node.create_app("other")
    await node.deploy("shop", WEB)
    other_files = {**WEB, "private.txt": "other app's data"}
    await node.deploy("other", other_files)
    assert (await node.get(HOST, "/write-app")).json() == {"error": "OSError"}
    layer = next(p for p in node.layers.root.iterdir() if (p / "private.txt").exists())
    for target in (
        str(layer / "private.txt"),
        str(node.data / "shipway.db"),
        str(node.data / "secret.key"),
    ):
        answer = (await node.get(HOST, f"/read?{target}")).json()
        assert answer.get("error") in ("FileNotFoundError", "PermissionError"), (target, answer)
    assert (await node.get(HOST, "/read?/app/server.py")).json()["read"].startswith("\nimport")


async def test_a_new_release_replaces_the_old_and_the_old_instances_stop(node: Node) -> None:
    node.create_app("shop")
    await node.deploy("shop", WEB)
    first_boot = (await node.get(HOST)).json()["boot"]
    await node.deploy("shop", {**WEB, "v2.txt": "2"})
    answer = (await node.get(HOST)).json()
    assert answer["release"] == "v2" and answer["boot"] != first_boot
    [env] = node.runtime.describe(node_app_id(node, "shop"))
    assert env["release"] == 2 and [i["state"] for i in env["instances"]] == ["healthy"]


def node_app_id(node: Node, name: str) -> int:
    from sqlalchemy import select

    with node.store.transaction() as session:
        app_id = session.scalar(select(App.id).where(App.name == name))
        assert app_id is not None
        return app_id


async def test_a_web_process_that_exits_fails_with_its_output_and_the_old_stays(
    node: Node,
) -> None:
    node.create_app("shop")
    await node.deploy("shop", WEB)
    broken = {
        "server.py": "import sys\nprint('missing DATABASE_URL', flush=True)\nsys.exit(1)\n",
        "Procfile": "web: python3 server.py\n",
    }
    deployment = node.deployment("shop", node.release("shop", broken))
    with pytest.raises(InstanceFailed) as failed:
        await node.runtime.launch(deployment)
    assert "web.1 failed to start: exited with code 1" in failed.value.message
    assert "missing DATABASE_URL" in failed.value.message
    assert (await node.get(HOST)).json()["release"] == "v1"


async def test_a_failing_instances_output_in_the_reason_is_masked(node: Node) -> None:
    node.create_app("shop")
    node.set_config("shop", {"DATABASE_PASSWORD": "pa55-w0rd-x"}, secret=True)
    broken = {
        "server.py": (
            "import os, sys\n"
            "print('cannot connect with', os.environ['DATABASE_PASSWORD'], flush=True)\n"
            "sys.exit(1)\n"
        ),
        "Procfile": "web: python3 server.py\n",
    }
    deployment = node.deployment("shop", node.release("shop", broken))
    with pytest.raises(InstanceFailed) as failed:
        await node.runtime.launch(deployment)
    assert failed.value.message == (
        "web.1 failed to start: exited with code 1; its last output:\ncannot connect with ***"
    ), "the reason is masked like the log"
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


async def test_a_web_process_that_never_answers_fails_after_the_health_timeout(
    node: Node,
) -> None:
    node.create_app("shop", health_timeout=1)
    await node.deploy("shop", WEB)
    silent = {"Procfile": "web: echo listening nowhere; sleep 600\n"}
    deployment = node.deployment("shop", node.release("shop", silent))
    with pytest.raises(InstanceFailed) as failed:
        await node.runtime.launch(deployment)
    assert "no healthy answer within 1 s" in failed.value.message
    assert "listening nowhere" in failed.value.message
    assert (await node.get(HOST)).json()["release"] == "v1"


async def test_the_health_check_uses_the_configured_path(node: Node) -> None:
    node.create_app("shop", health_path="/slow?s=0", health_timeout=5)
    await node.deploy("shop", WEB)
    assert (await node.get(HOST)).status_code == 200


async def test_a_crashed_instance_is_restarted_and_its_crash_logged(node: Node) -> None:
    node.create_app("shop")
    await node.deploy("shop", WEB)
    first_boot = (await node.get(HOST)).json()["boot"]
    crash = await node.get(HOST, "/crash")
    assert crash.status_code == 502
    app_id = node_app_id(node, "shop")

    async def back() -> bool:
        [env] = node.runtime.describe(app_id)
        [instance] = env["instances"]
        return bool(instance["state"] == "healthy" and instance["restarts"] == 1)

    await until(back, timeout=15)
    assert (await node.get(HOST)).json()["boot"] != first_boot
    log = await until(
        lambda: [line for line in node.app_log("shop") if line.startswith("web.1 crashed")]
    )
    assert log == ["web.1 crashed: exited with code 3; restarting in 1 s"]
    assert "web.1: crashing on request" in node.app_log("shop")


async def test_scaled_instances_share_the_requests(node: Node) -> None:
    app_id = node.create_app("shop")
    await node.deploy("shop", WEB)
    await node.scale(app_id, {"web": 3})
    seen = {(await node.get(HOST)).json()["process"] for _ in range(9)}
    assert seen == {"web.1", "web.2", "web.3"}
    await node.scale(app_id, {"web": 1})
    seen = {(await node.get(HOST)).json()["process"] for _ in range(4)}
    assert seen == {"web.1"}


def instance_names(node: Node, app_id: int) -> list[str]:
    [env] = node.runtime.describe(app_id)
    return sorted(i["name"] for i in env["instances"] if i["state"] == "healthy")


async def test_a_scale_stored_while_a_release_starts_reaches_that_release(node: Node) -> None:
    """The release read the formation before the scale stored its own: once live, it is scaled."""
    app_id = node.create_app("shop")
    await node.deploy("shop", WEB)
    second = node.deployment("shop", node.release("shop", {**WEB, "version.txt": "2"}))
    await node.runtime.launch(second)
    await node.scale(app_id, {"web": 2})  # scales v1, which is live
    assert node.runtime.route(second)
    await until(lambda: instance_names(node, app_id) == ["web.1", "web.2"], timeout=30)
    seen = {(await node.get(HOST)).json()["release"] for _ in range(4)}
    assert seen == {"v2"}


async def test_a_release_that_goes_live_during_a_scale_is_scaled(node: Node) -> None:
    app_id = node.create_app("shop")
    await node.deploy("shop", WEB)
    second = node.deployment("shop", node.release("shop", {**WEB, "version.txt": "2"}))
    await node.runtime.launch(second)
    scaling = asyncio.create_task(node.scale(app_id, {"web": 2}))
    await until(lambda: "[shipway] Starting v1 in production (web=2)" in node.app_log("shop"))
    assert node.runtime.route(second)  # while v1's two instances start
    await scaling
    await until(lambda: instance_names(node, app_id) == ["web.1", "web.2"], timeout=30)
    releases = {(await node.get(HOST)).json()["release"] for _ in range(4)}
    assert releases == {"v2"}


async def test_other_process_types_run_without_a_port(node: Node) -> None:
    node.create_app("shop")
    worker = "import os, time\nprint('working', os.environ.get('PORT'), flush=True)\n"
    worker += "time.sleep(600)\n"
    procfile = WEB["Procfile"] + "worker: python3 worker.py\n"
    await node.deploy("shop", {**WEB, "worker.py": worker, "Procfile": procfile})
    assert await until(lambda: "worker.1: working None" in node.app_log("shop"))
    [env] = node.runtime.describe(node_app_id(node, "shop"))
    assert sorted(i["name"] for i in env["instances"]) == ["web.1", "worker.1"]


async def test_previews_are_served_at_their_own_host(node: Node) -> None:
    node.create_app("shop")
    await node.deploy("shop", WEB)
    await node.deploy("shop", {**WEB, "preview.txt": "p"}, environment="feature-x")
    assert (await node.get("shop--feature-x.localhost")).json()["release"] == "v2"
    assert (await node.get(HOST)).json()["release"] == "v1"
    await node.runtime.remove(node_app_id(node, "shop"), "feature-x")
    gone = await node.get("shop--feature-x.localhost")
    assert gone.status_code == 404 and "shop--feature-x.localhost" in gone.text
    assert (await node.get(HOST)).json()["release"] == "v1"


async def test_a_static_site_is_served_by_the_router(node: Node) -> None:
    node.create_app("site")
    await node.deploy("site", {"index.html": "<h1>static</h1>"}, stack="static")
    response = await node.get("site.localhost")
    assert response.status_code == 200 and response.text == "<h1>static</h1>"
    assert node.runtime.describe(node_app_id(node, "site"))[0]["state"] == "static"


async def test_an_idle_app_sleeps_and_the_next_request_wakes_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent, "IDLE_CHECK_SECONDS", 0.1)
    app_id = node.create_app("shop", idle_timeout=1)
    node.runtime._idle_task = asyncio.create_task(node.runtime._idle_loop())
    await node.deploy("shop", WEB)
    assert (await node.get(HOST)).status_code == 200
    await until(lambda: node.runtime.describe(app_id)[0]["state"] == "asleep", timeout=10)
    woken = await asyncio.gather(*(node.get(HOST) for _ in range(5)))
    assert {r.json()["release"] for r in woken} == {"v1"}
    assert len({r.json()["boot"] for r in woken}) == 1, "one instance answers them all"
    await until(lambda: "[shipway] Woken by a request" in node.app_log("shop"))


async def test_after_a_restart_live_deployments_are_routed_again(
    node: Node, tmp_path: Path
) -> None:
    node.create_app("shop")
    node.create_app("sleepy", idle_timeout=60)
    await node.deploy("shop", WEB)
    await node.deploy("sleepy", WEB)
    await node.runtime.close()

    table = RouteTable()
    again = Runtime(node.store, tmp_path, table, base_domain="localhost")
    try:
        assert await again.reconcile() == 2
        assert sorted(table.hosts()) == ["shop.localhost", "sleepy.localhost"]
        shop = table.get("shop.localhost")
        assert shop is not None
        await until(lambda: bool(table.get("shop.localhost").upstreams), timeout=15)  # type: ignore[union-attr]
        sleepy = table.get("sleepy.localhost")
        assert sleepy is not None and sleepy.waker is not None and not sleepy.upstreams
    finally:
        await again.close()


async def test_without_isolation_instances_share_the_host_network(node: Node) -> None:
    """What shipway does when the operator lets sandboxes share the host's network."""
    node.create_app("shop")
    table = node.runtime.table
    shared = Runtime(node.store, node.data, table, base_domain="localhost", isolated=False)
    network.allow_shared(True)
    try:
        deployment = node.deployment("shop", node.release("shop", WEB))
        await shared.launch(deployment)
        assert shared.route(deployment)
        answer = (await node.get(HOST)).json()
        assert answer["release"] == "v1" and answer["port"] != "5000"
    finally:
        network.allow_shared(False)
        await shared.close()


async def test_without_slirp4netns_an_instance_is_refused(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: no instance runs on the host's network unless the operator said so."""
    node.create_app("shop")
    monkeypatch.setenv("PATH", hidden_path("slirp4netns"))
    network.state.cache_clear()
    try:
        runtime = Runtime(node.store, node.data, node.runtime.table, base_domain="localhost")
        assert runtime.isolated
        deployment = node.deployment("shop", node.release("shop", WEB))
        with pytest.raises(InstanceFailed, match="slirp4netns is not installed"):
            await runtime.launch(deployment)
        await runtime.close()
    finally:
        monkeypatch.undo()
        network.state.cache_clear()


async def test_not_as_root_instances_are_reached_through_their_doorway(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What shipway does when it may not enter namespaces itself: a helper process that joined
    the instance's namespaces makes the sockets, so instances stay isolated."""
    monkeypatch.setattr(netns, "can_enter", lambda: False)
    app_id = node.create_app("shop")
    await node.deploy("shop", WEB)
    answer = (await node.get(HOST)).json()
    assert answer["release"] == "v1" and answer["port"] == "5000"  # its own namespace's port
    await node.scale(app_id, {"web": 2})
    seen = {(await node.get(HOST)).json()["process"] for _ in range(6)}
    assert seen == {"web.1", "web.2"}
    doorways = [
        i.upstream.doorway
        for g in node.runtime._live.values()
        for i in g.instances
        if i.upstream is not None
    ]
    assert len(doorways) == 2 and all(d is not None for d in doorways)
    helpers = [d.proc for d in doorways if d is not None]
    await node.runtime.remove(app_id)
    assert all(proc.poll() is not None for proc in helpers), "each doorway ends with its instance"
