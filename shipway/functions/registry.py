"""Hot reload: the versions that run, published to a NATS JetStream KV bucket.

The bucket "functions" holds one key per function (`ORG_ID.NAME`), with history 1: the
version that runs, its source and settings. Every function worker follows the bucket and
keeps a local map, so a deploy reaches every worker by its next call, with no restart; a
worker that starts (or restarts) rebuilds its map from the bucket. The store stays the
record of every version; the bucket only says which one runs.

A worker follows the bucket through a pull consumer of its own, one long pull at a time:
at rest that is a request every PULL_SECONDS. (A KV watch, an ordered push consumer, would
also wake the worker four times a second to check flow control.) When the consumer is
lost, as when NATS restarts, the worker makes a new one and reads the whole bucket again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from shipway.jetstream import key_value, kv_prefix, kv_stream
from shipway.store.tables import Function, FunctionVersion

log = logging.getLogger(__name__)

BUCKET = "functions"
#: How long one pull waits for a change before it is renewed.
PULL_SECONDS = 10.0
#: Entries read per pull while the whole bucket is read.
BATCH = 256
#: Seconds between attempts to follow the bucket again once the consumer is lost.
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Deployed:
    """What a worker needs to run a function's current version."""

    organization_id: int
    function_id: int
    name: str
    version: int
    runtime: str
    source: str
    timeout: int
    memory_mb: int
    public: bool
    #: {KEY: {"value", "secret"}}, secrets still encrypted.
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return key(self.organization_id, self.name)

    @classmethod
    def of(cls, fn: Function, version: FunctionVersion) -> Deployed:
        return cls(
            organization_id=fn.organization_id,
            function_id=fn.id,
            name=fn.name,
            version=version.version,
            runtime=fn.runtime,
            source=version.source,
            timeout=fn.timeout,
            memory_mb=fn.memory_mb,
            public=fn.public,
            environment=dict(fn.environment or {}),
        )


def key(organization_id: int, name: str) -> str:
    return f"{organization_id}.{name}"


async def bucket(js: JetStreamContext) -> KeyValue:
    return await key_value(js, BUCKET)


class Registry:
    """The running versions by (organization, name): this worker's local map of the bucket."""

    def __init__(self) -> None:
        self._map: dict[str, Deployed] = {}
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, js: JetStreamContext) -> None:
        """Read the whole bucket, then follow it."""
        self._js = js
        self._kv = await bucket(js)
        await self._read_all()
        self._task = asyncio.create_task(self._follow(), name="functions-registry")

    async def _read_all(self) -> None:
        """Through a new consumer, every current entry into the map."""
        assert self._js is not None
        self._sub = sub = await self._js.pull_subscribe(
            kv_prefix(BUCKET) + ">",
            stream=kv_stream(BUCKET),
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT,
                ack_policy=api.AckPolicy.NONE,
                inactive_threshold=PULL_SECONDS * 10,
                mem_storage=True,
                num_replicas=1,
            ),
        )
        pending = (await sub.consumer_info()).num_pending
        while pending:
            msgs = await sub.fetch(min(pending, BATCH), timeout=10)
            if not msgs:
                raise TimeoutError(f"the {BUCKET} bucket's entries stopped coming")
            self._apply(msgs)
            pending = msgs[-1].metadata.num_pending

    async def _follow(self) -> None:
        while True:
            assert self._sub is not None
            try:
                self._apply(await self._sub.fetch(BATCH, timeout=PULL_SECONDS))
            except TimeoutError:  # no change within PULL_SECONDS
                pass
            except Exception as e:  # the consumer or the connection is gone
                log.warning("functions: following the bucket again: %s", e)
                await self._follow_again()

    async def _follow_again(self) -> None:
        await self._unsubscribe()
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            try:
                await self._read_all()
                return
            except Exception as e:
                log.debug("functions: cannot read the bucket yet: %s", e)

    async def _unsubscribe(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    def _apply(self, msgs: list[Msg]) -> None:
        prefix = kv_prefix(BUCKET)
        for msg in msgs:
            key = msg.subject.removeprefix(prefix)
            if (msg.headers or {}).get(KV_OP) in (KV_DEL, KV_PURGE) or not msg.data:
                self._map.pop(key, None)
                continue
            try:
                self._map[key] = Deployed(**json.loads(msg.data))
            except (ValueError, TypeError) as e:
                log.warning("functions: ignoring a bad entry for %s: %s", key, e)

    def get(self, organization_id: int, name: str) -> Deployed | None:
        return self._map.get(key(organization_id, name))

    async def publish(self, deployed: Deployed) -> None:
        """Make DEPLOYED the running version everywhere; here at once."""
        self._map[deployed.key] = deployed
        if self._kv is not None:
            await self._kv.put(deployed.key, json.dumps(asdict(deployed)).encode())

    async def unpublish(self, organization_id: int, name: str) -> None:
        self._map.pop(key(organization_id, name), None)
        if self._kv is not None:
            await self._kv.delete(key(organization_id, name))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._unsubscribe()
