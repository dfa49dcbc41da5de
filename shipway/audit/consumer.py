"""Entries other services publish on NATS: a message on `audit.ingest.<tenant>` holds one
entry or a batch, as the API takes them (shipway.audit.ingest checks both alike).

The AUDIT stream keeps each message until it is acknowledged (work-queue retention), and one
durable pull consumer takes them in batches with explicit acks: a message is acked once its
entries are committed, so a crash or a store outage redelivers it, and the sequences make
the redelivery harmless. A message that can never be stored (not JSON, breaking the
contract, an unknown tenant) is terminated, not redelivered, and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from sqlalchemy import select

from shipway import jsontext, metrics
from shipway.audit import ingest
from shipway.errors import ValidationError
from shipway.jetstream import ensure_stream
from shipway.store import Store
from shipway.store.tables import Organization

log = logging.getLogger(__name__)

STREAM = "AUDIT"
PREFIX = "audit.ingest."
DURABLE = "audit-ingest"
#: Messages taken at a time, and how long a fetch waits for the first. When one waited in
#: vain, the next waits for a single message, as long as IDLE_SECONDS: one that comes is
#: taken at once, and a consumer at rest wakes six times a minute rather than every second
#: (after NATS itself restarted, the wait that it forgot ends within IDLE_SECONDS).
BATCH = 500
FETCH_SECONDS = 1.0
IDLE_SECONDS = 10.0
#: Seconds before a message taken but not acked is delivered again.
ACK_WAIT = 60.0
#: Seconds before a batch the store could not take is tried again.
RETRY_SECONDS = 2.0


def subject(tenant: str) -> str:
    """Where a service publishes the entries of TENANT (the organization's name)."""
    return PREFIX + tenant


def stream_config() -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        description="audit entries from other services, kept until stored",
        subjects=[PREFIX + ">"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        max_age=timedelta(days=7).total_seconds(),
    )


class AuditConsumer:
    def __init__(self, store: Store, js: JetStreamContext) -> None:
        self.store = store
        self.js = js
        self._task: asyncio.Task[None] | None = None
        self._tenants: dict[str, int] = {}

    async def start(self) -> None:
        await ensure_stream(self.js, stream_config())
        subscription = await self.js.pull_subscribe(
            PREFIX + ">",
            durable=DURABLE,
            stream=STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT, max_ack_pending=20 * BATCH
            ),
        )
        self._task = asyncio.create_task(self._run(subscription), name="audit-consumer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, subscription: Any) -> None:
        idle = False
        while True:
            batch, wait = (1, IDLE_SECONDS) if idle else (BATCH, FETCH_SECONDS)
            try:
                messages = await subscription.fetch(batch, timeout=wait)
            except (TimeoutError, NatsTimeout):
                idle = True
                continue
            except Exception as e:  # NATS away for a moment: the client reconnects
                log.warning("audit consumer: cannot fetch: %s", e)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            idle = False
            try:
                await self._take(messages)
            except Exception as e:  # the store is away: leave them unacked, to come again
                log.warning("audit consumer: cannot store %d messages: %s", len(messages), e)
                metrics.audit_failed("nats", "store", len(messages))
                for message in messages:
                    with contextlib.suppress(Exception):
                        await message.nak(delay=RETRY_SECONDS)

    async def _take(self, messages: list[Any]) -> None:
        """Store the entries of MESSAGES in one transaction, then ack them."""
        by_tenant: dict[str, list[ingest.Incoming]] = defaultdict(list)
        taken, refused = [], []
        for message in messages:
            tenant = message.subject.removeprefix(PREFIX)
            try:
                entries = ingest.check_batch(jsontext.loads(message.data, "the message"))
            except ValidationError as e:
                log.warning("audit consumer: refused a message on %s: %s", message.subject, e)
                refused.append(message)
                continue
            by_tenant[tenant].extend(entries)
            taken.append((tenant, message))
        unknown, done = await asyncio.to_thread(self._store, by_tenant)
        batches = sum(tenant not in unknown for tenant, _ in taken)
        metrics.audit_stored("nats", batches, done.stored, done.duplicates)
        for tenant, message in taken:
            if tenant in unknown:
                log.warning("audit consumer: no organization named %r", tenant)
                refused.append(message)
            else:
                await message.ack()
        for message in refused:
            await message.term()
        metrics.audit_failed("nats", "refused", len(refused))

    def _store(
        self, by_tenant: dict[str, list[ingest.Incoming]]
    ) -> tuple[set[str], ingest.Ingested]:
        """Ingest each tenant's entries; the tenants that do not exist, and what was stored."""
        unknown = set()
        stored = duplicates = 0
        with self.store.transaction() as session:
            for tenant, entries in by_tenant.items():
                organization_id = self._tenants.get(tenant)
                if organization_id is None:
                    organization_id = session.scalar(
                        select(Organization.id).where(Organization.name == tenant)
                    )
                    if organization_id is None:
                        unknown.add(tenant)
                        continue
                    self._tenants[tenant] = organization_id
                done = ingest.ingest(session, organization_id, entries)
                stored, duplicates = stored + done.stored, duplicates + done.duplicates
        return unknown, ingest.Ingested(stored, duplicates)
