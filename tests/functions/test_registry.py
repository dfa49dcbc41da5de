"""Hot reload through the NATS KV bucket: every worker's map follows deploys, and a new
worker rebuilds its map from the bucket."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

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


async def test_a_worker_whose_consumer_is_lost_reads_the_bucket_again(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As when NATS restarts: the worker's consumer is gone, and the deploys made meanwhile
    still reach it."""
    bucket = f"functions-lost-{id(servers)}"
    monkeypatch.setattr(registry_module, "BUCKET", bucket)
    monkeypatch.setattr(registry_module, "RETRY_SECONDS", 0.05)
    # A deleted consumer is noticed at the next pull
    monkeypatch.setattr(registry_module, "PULL_SECONDS", 0.5)
    link = servers.link()
    await link.connect()
    worker = Registry()
    try:
        await worker.start(link.js)
        jsm = link.nc.jsm()
        (consumer,) = await jsm.consumers_info(f"KV_{bucket}")
        await jsm.delete_consumer(f"KV_{bucket}", consumer.name)
        kv = await registry_module.bucket(link.js)
        await kv.put("1.report", json.dumps(asdict(deployed("report", 3))).encode())
        await until(lambda: worker.get(1, "report") == deployed("report", 3))
        (again,) = await jsm.consumers_info(f"KV_{bucket}")
        assert again.name != consumer.name
    finally:
        await worker.close()
        await link.close()
