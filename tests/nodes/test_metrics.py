"""The node's series (router requests by app and status class, their latency, instances by
state), moved by real requests to real sandboxed instances and a static site, and read as
the control plane reads them: from the node's private control socket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from shipway import asgi
from shipway.nodes import client, control
from shipway.nodes.client import NodeClient
from tests.helpers import until
from tests.runtime.conftest import WEB, Node, node  # noqa: F401  (node: a fixture)

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def asked(node: Node) -> AsyncIterator[NodeClient]:  # noqa: F811
    """The control plane's client of NODE, through the node's real control socket."""
    async with AsyncExitStack() as stack:
        address = client.socket_name(str(node.data))
        await asgi.serve(stack, control.app(node.runtime, {}), address, name="node control")
        node_client = NodeClient(str(node.data))
        stack.push_async_callback(node_client.close)
        yield node_client


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def samples(node_client: NodeClient) -> Samples:
    """Every sample the node gives, by name and sorted labels."""
    text = await node_client.metrics()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests(found: Samples, app: str, status_class: str) -> float:
    return found.get(
        ("shipway_router_requests_total", (("app", app), ("status_class", status_class))), 0.0
    )


def healthy(found: Samples) -> float:
    return found.get(("shipway_instances", (("state", "healthy"),)), 0.0)


async def test_requests_and_instances_are_counted_and_reach_the_control_plane(
    node: Node,  # noqa: F811
    asked: NodeClient,
) -> None:
    shop, site = f"shop-{uuid.uuid4().hex[:6]}", f"site-{uuid.uuid4().hex[:6]}"
    before = await samples(asked)
    shop_id = node.create_app(shop)
    await node.deploy(shop, WEB)
    node.create_app(site)
    await node.deploy(site, {"index.html": "<h1>hi</h1>"}, stack="static")
    assert healthy(await samples(asked)) == healthy(before) + 1

    for _ in range(2):
        assert (await node.get(f"{shop}.localhost")).status_code == 200
    assert (await node.get(f"{shop}.localhost", "/crash")).status_code == 502
    assert (await node.get(f"{site}.localhost")).status_code == 200
    assert (await node.get(f"{site}.localhost", "/missing.html")).status_code == 404
    assert (await node.get("nobody.localhost")).status_code == 404  # no app's: not counted

    found = await samples(asked)
    assert requests(found, shop, "2xx") == 2 and requests(found, shop, "5xx") == 1
    assert requests(found, site, "2xx") == 1 and requests(found, site, "4xx") == 1
    assert not [key for key in found if ("app", "nobody") in key[1]]
    duration = ("shipway_router_request_duration_seconds_count", (("app", shop),))
    assert found[duration] == 3

    async def back() -> bool:  # the crashed instance is started again
        [env] = node.runtime.describe(shop_id)
        return bool(env["instances"][0]["state"] == "healthy")

    await until(back)
    assert healthy(await samples(asked)) == healthy(before) + 1
    await node.runtime.remove(shop_id)
    assert healthy(await samples(asked)) == healthy(before)
