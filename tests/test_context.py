"""The workers, links and health report against real Temporal and NATS servers."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest

from shipway import natsauth
from shipway.context import Context
from shipway.embedded import nats as embedded_nats
from shipway.embedded import ports
from shipway.embedded.process import ProcessState, SupervisedProcess
from shipway.errors import ServiceError
from shipway.links import NatsLink, connect_temporal
from shipway.settings import Settings
from shipway.workers import ProbeInput, ProbeWorkflow, Workers, run_probe
from tests.helpers import migrated_store
from tests.servers import Servers

pytestmark = pytest.mark.integration


async def test_control_workers_run_a_workflow_end_to_end(servers: Servers) -> None:
    client = await connect_temporal(servers.temporal_address, "default")
    queue = f"test-{uuid.uuid4()}"
    workers = Workers(client, task_queue=queue)
    workers.start()
    try:
        assert (await run_probe(client, queue))["status"] == "ok"
        result = await client.execute_workflow(
            ProbeWorkflow.run,
            ProbeInput(nonce="n1"),
            id=f"probe-{uuid.uuid4()}",
            task_queue=queue,
        )
        assert result == f"n1:{queue}"
        assert workers.running
    finally:
        await workers.stop()
    assert not workers.running
    stalled = await run_probe(client, queue, timeout=1)
    assert stalled["status"] == "down"


async def test_jetstream_round_trip(servers: Servers) -> None:
    link = servers.link()
    await link.connect()
    try:
        stream = f"T{uuid.uuid4().hex[:8]}"
        await link.js.add_stream(name=stream, subjects=[f"{stream}.>"])
        await link.js.publish(f"{stream}.a", b"hello")
        sub = await link.js.pull_subscribe(f"{stream}.a", durable="d")
        [message] = await sub.fetch(1, timeout=5)
        assert message.data == b"hello"
        assert await link.ok()
    finally:
        await link.close()
    assert not await link.ok()


async def test_health_is_ok_when_every_part_answers(servers: Servers, tmp_path: Path) -> None:
    store = migrated_store(f"sqlite:///{tmp_path / 'h.db'}")
    link = servers.link()
    await link.connect()
    services = Context(
        settings=Settings.load({"data_dir": tmp_path}, env={}),
        store=store,
        temporal=await connect_temporal(servers.temporal_address, "default"),
        nats=link,
        addresses={"temporal": servers.temporal_address, "nats": servers.nats_url},
    )
    try:
        report = await services.health()
        assert report["status"] == "ok"
        assert report["components"]["temporal"]["embedded"] is False
        assert report["components"]["nats"]["address"] == servers.nats_url
    finally:
        await link.close()
        store.close()


async def test_a_killed_server_is_restarted_and_clients_reconnect(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    proc = SupervisedProcess(embedded_nats.spec(tmp_path, ports.any_free()))
    proc.backoff_start = 0.2
    await proc.start()
    link = NatsLink(
        f"nats://127.0.0.1:{proc.spec.ready_port}",
        natsauth.from_data_dir(tmp_path, natsauth.Role.CONTROL),
    )
    await link.connect()
    try:
        first = proc.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        for _ in range(100):
            if proc.state is not ProcessState.RUNNING:
                break
            await asyncio.sleep(0.02)
        assert proc.state in (ProcessState.RESTARTING, ProcessState.STARTING)
        assert await proc.wait_ready(30)
        assert proc.pid != first and proc.restarts == 1
        for _ in range(200):
            if await link.ok():
                break
            await asyncio.sleep(0.05)
        assert await link.ok()
    finally:
        await link.close()
        await proc.stop()
    assert proc.state is ProcessState.STOPPED and proc.pid is None


async def test_a_server_that_cannot_start_is_reported(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    spec = embedded_nats.spec(tmp_path, ports.any_free())
    spec.argv.append("--no-such-flag")
    with pytest.raises(ServiceError, match="nats exited with code"):
        await SupervisedProcess(spec).start()


async def test_an_unreachable_temporal_is_a_clear_error() -> None:
    with pytest.raises(ServiceError, match=r"cannot reach Temporal at 127\.0\.0\.1:"):
        await connect_temporal(f"127.0.0.1:{ports.any_free()}", "default", timeout=1)
