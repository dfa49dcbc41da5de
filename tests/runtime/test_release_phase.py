"""The release phase: the Procfile's `release:` runs once before a release's instances start, in
a sandbox like a web instance's, within the plan's limits and the release timeout."""

from __future__ import annotations

import asyncio
import socket

import pytest

from shipway.errors import ConfigError
from shipway.runtime.agent import ReleasePhaseFailed
from shipway.settings import Settings
from shipway.store.tables import Deployment
from tests.helpers import sandboxed, until
from tests.runtime.conftest import WEB, Node

pytestmark = pytest.mark.integration

HOST = "shop.localhost"

#: Says what it sees: its environment, where it runs, its host name and the release's files.
REPORT = (
    "echo migrating $MARKER as $SHIPWAY_PROCESS of $SHIPWAY_APP $SHIPWAY_RELEASE"
    " in $SHIPWAY_ENVIRONMENT at $(pwd) with key $API_KEY on $(hostname);"
    " grep -c ^class /app/server.py"
)

#: Takes memory 16 MiB at a time until something stops it.
HOG = "chunks = []\nwhile True:\n    chunks.append(bytearray(2**24))\n"


def with_release(command: str, **files: str) -> dict[str, str]:
    """The web app of these tests with a release phase running COMMAND."""
    return {**WEB, **files, "Procfile": f"release: {command}\n" + WEB["Procfile"]}


async def phase_log(node: Node, app: str, version: int) -> list[str]:
    """The app log's lines of the release phase of VERSION, once it has ended."""
    mark = f"elease phase of v{version}"

    def lines() -> list[str] | None:
        log = node.app_log(app)
        if not any(line.startswith(f"[shipway] R{mark} ") for line in log):
            return None
        return [line for line in log if mark in line or "release: " in line]

    found: list[str] = await until(lines)
    return found


async def test_it_runs_once_with_the_releases_config_and_files(node: Node) -> None:
    app_id = node.create_app("shop")
    node.set_config("shop", {"MARKER": "m1"})
    node.set_config("shop", {"API_KEY": "s3cr3t-value"}, secret=True)
    deployment = node.deployment("shop", node.release("shop", with_release(REPORT)))
    seconds = await node.runtime.release_phase(deployment)
    assert seconds is not None and seconds > 0
    lines = await phase_log(node, "shop", 1)
    assert lines[0] == f"[shipway] Running release phase of v1: {REPORT}"
    assert lines[1:3] == [
        "release: migrating m1 as release of shop v1 in production at /app with key *** on shop",
        "release: 1",
    ], "the secret is masked"
    assert lines[3].startswith("[shipway] Release phase of v1 done in ")
    assert len(lines) == 4
    # It is not a process type: the instances are those of the Procfile's other lines.
    await node.runtime.launch(deployment)
    assert node.runtime.route(deployment)
    [env] = node.runtime.describe(app_id)
    assert [i["name"] for i in env["instances"]] == ["web.1"]
    assert (await node.get(HOST)).json()["release"] == "v1"


async def test_a_previews_release_phase_is_named_after_its_environment(node: Node) -> None:
    node.create_app("shop")
    release = node.release("shop", with_release("echo migrating $SHIPWAY_ENVIRONMENT"))
    await node.runtime.release_phase(node.deployment("shop", release, "feature-x"))
    assert "feature-x/release: migrating feature-x" in await phase_log(node, "shop", 1)


async def test_it_cannot_reach_the_hosts_services_as_instances_cannot(node: Node) -> None:
    node.create_app("shop")
    with socket.socket() as service:  # a service of the host's, on its loopback
        service.bind(("127.0.0.1", 0))
        service.listen()
        port = service.getsockname()[1]
        probe = (
            'python3 -c \'import socket; socket.create_connection(("127.0.0.1", '
            f'{port}), timeout=5); print("reached the host")\''
        )
        release = node.release("shop", with_release(probe))
        with pytest.raises(ReleasePhaseFailed) as failed:
            await node.runtime.release_phase(node.deployment("shop", release))
    assert "ConnectionRefusedError" in failed.value.message
    assert "reached the host" not in failed.value.message


async def test_one_that_exits_non_zero_fails_with_its_output_and_the_old_release_stays(
    node: Node,
) -> None:
    node.create_app("shop")
    node.set_config("shop", {"DATABASE_PASSWORD": "pa55-w0rd-x"}, secret=True)
    await node.deploy("shop", WEB)
    failing = "echo connecting with $DATABASE_PASSWORD; echo no such table: users; exit 1"
    deployment = node.deployment("shop", node.release("shop", with_release(failing)))
    with pytest.raises(ReleasePhaseFailed) as failed:
        await node.runtime.release_phase(deployment)
    assert failed.value.message == (
        "release phase failed (exited with code 1); its last output:\n"
        "connecting with ***\nno such table: users"
    ), "the reason is masked like the log"
    lines = await phase_log(node, "shop", 2)
    assert lines[-1].startswith("[shipway] Release phase of v2 failed after ")
    assert (await node.get(HOST)).json()["release"] == "v1"


async def test_a_failure_keeps_the_last_twenty_lines(node: Node) -> None:
    node.create_app("shop")
    chatty = "for i in $(seq 1 30); do echo line $i; done; exit 3"
    deployment = node.deployment("shop", node.release("shop", with_release(chatty)))
    with pytest.raises(ReleasePhaseFailed) as failed:
        await node.runtime.release_phase(deployment)
    head, _, output = failed.value.message.partition("; its last output:\n")
    assert head == "release phase failed (exited with code 3)"
    assert output.splitlines() == [f"line {i}" for i in range(11, 31)]


async def test_one_that_runs_past_the_release_timeout_is_killed(node: Node) -> None:
    node.create_app("shop")
    node.runtime.release_timeout = 1
    deployment = node.deployment(
        "shop", node.release("shop", with_release("echo started; sleep 617"))
    )
    with pytest.raises(ReleasePhaseFailed) as failed:
        await node.runtime.release_phase(deployment)
    assert failed.value.message == (
        "release phase failed (killed: timed out after 1 s); its last output:\nstarted"
    )
    assert sandboxed("sleep", "617") == []


async def test_one_that_takes_more_memory_than_the_plan_allows_is_killed(node: Node) -> None:
    node.create_app("shop")
    release = node.release("shop", with_release("python3 hog.py", **{"hog.py": HOG}))
    with pytest.raises(ReleasePhaseFailed) as failed:
        await node.runtime.release_phase(node.deployment("shop", release))
    assert "memory limit of 512 MiB exceeded" in failed.value.message
    assert sandboxed("python3", "hog.py") == []


async def test_a_stopped_release_phase_leaves_nothing_running(node: Node) -> None:
    node.create_app("shop")
    release = node.release("shop", with_release("echo sleeping; sleep 618"))
    running = asyncio.create_task(node.runtime.release_phase(node.deployment("shop", release)))
    await until(lambda: "release: sleeping" in node.app_log("shop"))
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert sandboxed("sleep", "618") == []
    assert (await phase_log(node, "shop", 1))[-1] == "[shipway] Release phase of v1 stopped"


async def test_none_runs_for_a_rollback_or_a_release_without_one(node: Node) -> None:
    node.create_app("shop")
    plain = node.deployment("shop", node.release("shop", WEB))
    assert await node.runtime.release_phase(plain) is None
    rollback = node.deployment("shop", node.release("shop", with_release("echo migrating")))
    with node.store.transaction() as session:
        row = session.get(Deployment, rollback)
        assert row is not None
        row.source = "rollback"
    assert await node.runtime.release_phase(rollback) is None
    await node.deploy("shop", WEB)  # a line of the app's log after anything it might have said
    await until(
        lambda: any(line.startswith("[shipway] v3 healthy") for line in node.app_log("shop"))
    )
    assert not [line for line in node.app_log("shop") if "elease phase" in line]


def test_the_operator_sets_the_release_timeout_within_bounds() -> None:
    assert Settings.load(env={}).release_timeout == 300
    assert Settings.load(env={"SHIPWAY_RELEASE_TIMEOUT": "60"}).release_timeout == 60
    for bad in ("0", "3601", "soon"):
        with pytest.raises(ConfigError, match="SHIPWAY_RELEASE_TIMEOUT"):
            Settings.load(env={"SHIPWAY_RELEASE_TIMEOUT": bad})
