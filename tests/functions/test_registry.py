"""Hot reload through the NATS KV bucket: every worker's map follows deploys, and a new
worker rebuilds its map from the bucket."""

from __future__ import annotations

import asyncio

import pytest

from shipway.functions import registry as registry_module
from shipway.functions.registry import Deployed, Registry
from tests.servers import Servers

pytestmark = pytest.mark.integration


def deployed(name: str, version: int, source: str = "x") -> Deployed:
    return Deployed(
        organization_id=1,
        function_id=7,
        name=name,
        version=version,
        runtime="js",
        source=source,
        timeout=30,
        memory_mb=128,
        public=False,
    )


async def until(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("gave up waiting")


async def test_workers_follow_deploys_and_a_new_worker_rebuilds_its_map(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_module, "BUCKET", f"functions-test-{id(servers)}")
    links = [servers.link(), servers.link()]
    for link in links:
        await link.connect()
    deployer, worker = Registry(), Registry()
    late = Registry()
    try:
        await deployer.start(links[0].js)
        await worker.start(links[1].js)
        await deployer.publish(deployed("report", 1, "v1"))
        assert deployer.get(1, "report") == deployed("report", 1, "v1")
        await until(lambda: worker.get(1, "report") is not None)
        await deployer.publish(deployed("report", 2, "v2"))
        await until(lambda: (found := worker.get(1, "report")) is not None and found.version == 2)

        await late.start(links[1].js)
        assert late.get(1, "report") == deployed("report", 2, "v2")
        kv = await registry_module.bucket(links[0].js)
        status = await kv.status()
        assert status.history == 1

        await deployer.unpublish(1, "report")
        await until(lambda: worker.get(1, "report") is None and late.get(1, "report") is None)
    finally:
        for reg in (deployer, worker, late):
            await reg.close()
        for link in links:
            await link.close()
