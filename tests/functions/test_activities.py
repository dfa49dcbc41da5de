"""A scheduled run that fails is reported: to the function's webhook (retried while it
fails) and in the audit trail."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shipway.accounts.roles import Principal, Role
from shipway.apps.secretbox import SecretBox
from shipway.functions import activities, service
from shipway.functions.activities import FunctionActivities
from shipway.functions.worker import FunctionWorker
from shipway.functions.workflow import ScheduledRun
from shipway.store.tables import AuditEntry, FunctionRun, Organization
from tests.helpers import migrated_store


class Receiver:
    """A tiny HTTP server that answers 503 to its first FAILURES requests, then 204."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        self.bodies.append(json.loads(await reader.readexactly(length)))
        status = b"503 Unavailable" if len(self.bodies) <= self.failures else b"204 No Content"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


async def test_a_failed_scheduled_run_reaches_the_webhook_and_the_audit_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(activities, "WEBHOOK_FIRST_PAUSE", 0.05)
    receiver = Receiver(failures=2)
    url = await receiver.start()
    store = migrated_store(f"sqlite:///{tmp_path / 'shipway.db'}")
    with store.transaction() as session:
        org = Organization(name="acme", is_admin=True)
        session.add(org)
        session.flush()
        owner = Principal(org.id, Role.OWNER, "user:o")
        service.deploy(
            session,
            owner,
            "nightly",
            runtime="js",
            source="function handler(event) { throw new Error('no data for ' + event.params.day) }",
            settings=service.Settings(webhook_url=url),
            box=SecretBox.load(tmp_path),
        )
        org_id = org.id
    worker = FunctionWorker(store, tmp_path, None)
    try:
        report = await FunctionActivities(worker.invoker, store, tmp_path).run(
            ScheduledRun(org_id, "nightly", "night", {"day": "mon"})
        )
        await worker.invoker.settle()
    finally:
        await worker.js_runtime.close()
    assert report.status == "failed" and report.message == "no data for mon"
    assert len(receiver.bodies) == 3, "two 503s, then delivered"
    body = receiver.bodies[-1]
    assert body["event"] == "function.run.failed" and body["trigger"] == "night"
    assert body["run"] == {"id": report.run_id, "status": "failed", "message": "no data for mon"}
    with store.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "function.run.failed")
        ).one()
        assert entry.subject == "function:nightly" and entry.payload["run"] == report.run_id
        run = session.get(FunctionRun, report.run_id)
        assert run is not None and run.trigger == "schedule:night" and run.status == "failed"
    store.close()
    assert receiver.server is not None
    receiver.server.close()
