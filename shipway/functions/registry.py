"""Hot reload: the versions that run, published to a NATS JetStream KV bucket.

The bucket "functions" holds one key per function (`ORG_ID.NAME`), with history 1: the
version that runs, its source and settings. Every function worker watches the bucket and
keeps a local map, so a deploy reaches every worker by its next call, with no restart; a
worker that starts (or restarts) rebuilds its map from the bucket. The store stays the
record of every version; the bucket only says which one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from shipway.jetstream import key_value
from shipway.store.tables import Function, FunctionVersion

log = logging.getLogger(__name__)

BUCKET = "functions"


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
        self._kv: KeyValue | None = None
        self._watcher: Any = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self, js: JetStreamContext) -> None:
        """Load the bucket, then follow it; returns once the map holds every current key."""
        self._kv = await bucket(js)
        self._watcher = await self._kv.watchall()
        self._task = asyncio.create_task(self._follow(), name="functions-registry")
        await self.ready.wait()

    async def _follow(self) -> None:
        async for entry in self._watcher:
            if entry is None:  # the initial values have all been delivered
                self.ready.set()
                continue
            if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                self._map.pop(entry.key, None)
                continue
            try:
                self._map[entry.key] = Deployed(**json.loads(entry.value))
            except (ValueError, TypeError) as e:
                log.warning("functions: ignoring a bad entry for %s: %s", entry.key, e)

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
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
