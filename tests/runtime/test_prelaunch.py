"""The node starts a release as soon as it hears that its deployment is deploying, ahead of the
workflow's activity, which takes the start over; what nothing takes over is stopped."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shipway import events, subscribers
from shipway.deploys import service as deploys
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.natsauth import Role
from shipway.runtime.prelaunch import Prelaunch, deployment_of
from shipway.store.tables import Deployment
from tests.helpers import sandboxed, until
from tests.runtime.conftest import WEB, Node
from tests.servers import Servers

pytestmark = pytest.mark.integration

HOST = "shop.localhost"


def ours() -> list[int]:
    """The web processes this test's runtime runs."""
    return sandboxed("python3", "server.py", under=os.getpid())


def booted(node: Node) -> list[str]:
    return [line for line in node.app_log("shop") if "booting" in line]


def deploying(node: Node, files: dict[str, str]) -> int:
    """A deployment of a release of FILES, built, then moved to deploying as the control
    plane moves it (its event goes out once committed)."""
    deployment = node.deployment("shop", node.release("shop", files))
    with node.store.transaction() as session:
        row = session.get(Deployment, deployment)
        assert row is not None
        row.status = DeploymentStatus.BUILDING.value
    move(node, deployment, DeploymentStatus.DEPLOYING)
    return deployment


def move(node: Node, deployment: int, status: DeploymentStatus) -> None:
    """Move the deployment as the control plane does: its event goes out once committed."""
    with node.store.transaction() as session:
        row = session.get(Deployment, deployment)
        assert row is not None
        deploys.move_deployment(session, row, status)


@pytest_asyncio.fixture
async def hearing(node: Node, servers: Servers) -> AsyncIterator[tuple[Node, Prelaunch]]:
    """NODE hearing, with a node's NATS key, the deployment events this test's store emits."""
    control = servers.link()
    await control.connect()
    publisher = subscribers.publish_events(control)
    link = servers.link(Role.NODE)
    await link.connect()
    prelaunch = Prelaunch(node.runtime, link)
    await prelaunch.start()
    try:
        node.create_app("shop")
        yield node, prelaunch
    finally:
        await prelaunch.close()
        events.unlisten(publisher)
        await link.close()
        await control.close()


async def test_a_release_starts_on_its_event_and_the_workflows_launch_takes_it_over(
    hearing: tuple[Node, Prelaunch],
) -> None:
    node, prelaunch = hearing
    deployment = deploying(node, WEB)
    await until(ours)
    early = node.runtime._early[deployment]
    generation = await node.runtime.launch(deployment)
    assert generation is early.result() and len(generation.instances) == 1, "taken over"
    assert node.runtime.route(deployment)
    assert (await node.get(HOST)).json()["release"] == "v1"
    assert len(ours()) == 1
    move(node, deployment, DeploymentStatus.LIVE)
    await until(lambda: not prelaunch._watching)
    assert (await node.get(HOST)).json()["release"] == "v1", "a live one is never stopped"


async def test_an_early_start_nobody_takes_over_stops_when_the_deployment_ends(
    hearing: tuple[Node, Prelaunch],
) -> None:
    node, _ = hearing
    deployment = deploying(node, WEB)
    await until(lambda: booted(node))
    move(node, deployment, DeploymentStatus.SUPERSEDED)
    await until(lambda: not ours())
    assert not node.runtime.route(deployment), "nothing of it is left to route"


async def test_a_release_with_a_release_phase_waits_for_the_workflow(
    hearing: tuple[Node, Prelaunch],
) -> None:
    node, _ = hearing
    files = {**WEB, "Procfile": "release: echo migrating\nweb: python3 server.py\n"}
    deployment = deploying(node, files)
    started = await until(lambda: node.runtime._early.get(deployment))
    assert await started is None, "it started nothing"
    assert await node.runtime.release_phase(deployment) is not None
    await node.runtime.launch(deployment)
    assert node.runtime.route(deployment)
    assert (await node.get(HOST)).json()["release"] == "v1"
    assert len(ours()) == 1


async def test_a_start_is_begun_once(node: Node) -> None:
    node.create_app("shop")
    deployment = node.deployment("shop", node.release("shop", WEB))
    assert node.runtime.prelaunch(deployment)
    early = node.runtime._early[deployment]
    assert not node.runtime.prelaunch(deployment), "it is under way"
    assert await node.runtime.launch(deployment) is early.result()
    assert not node.runtime.prelaunch(deployment), "it is done, waiting for its route"
    assert node.runtime.route(deployment)
    assert len(ours()) == 1


async def test_a_deployment_no_longer_deploying_starts_nothing(node: Node) -> None:
    node.create_app("shop")
    deployment = node.deployment("shop", node.release("shop", WEB))
    with node.store.transaction() as session:
        row = session.get(Deployment, deployment)
        assert row is not None
        row.status = DeploymentStatus.SUPERSEDED.value
    assert node.runtime.prelaunch(deployment)
    started = node.runtime._early[deployment]
    assert await started is None
    await node.runtime.forget_early(deployment)
    assert not node.runtime._early and not ours()


def test_the_deployment_is_read_from_the_events_subject() -> None:
    assert deployment_of("events.deployment.42.deployment.deploying") == 42
    assert deployment_of("events.deployment.x.deployment.deploying") is None
    assert deployment_of("events") is None
