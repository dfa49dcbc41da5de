"""Clients for Temporal and NATS that survive their server restarting, and say if it is up."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from temporalio.client import Client as TemporalClient

from shipway.errors import ServiceError

log = logging.getLogger(__name__)


async def _retry(what: str, attempt: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return await attempt()
        except Exception as e:  # the server may still be starting; any failure is retried
            last = e
            await asyncio.sleep(0.2)
    raise ServiceError(f"cannot reach {what}: {last}") from last


async def connect_temporal(address: str, namespace: str, timeout: float = 30.0) -> TemporalClient:
    """A Temporal client, retrying while the server comes up; raises ServiceError after TIMEOUT."""

    async def attempt() -> TemporalClient:
        return await TemporalClient.connect(address, namespace=namespace)

    client: TemporalClient = await _retry(f"Temporal at {address}", attempt, timeout)
    return client


async def temporal_ok(client: TemporalClient) -> bool:
    try:
        return await client.service_client.check_health(timeout=timedelta(seconds=2))
    except Exception:
        return False


class NatsLink:
    """One NATS connection that reconnects forever, with JetStream on top."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.nc: NatsClient = NatsClient()
        self._js: JetStreamContext | None = None

    async def connect(self, timeout: float = 30.0) -> None:
        async def attempt() -> None:
            await self.nc.connect(
                self.url,
                name="shipway",
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=2,
                error_cb=self._quiet,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )

        await _retry(f"NATS at {self.url}", attempt, timeout)

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            self._js = self.nc.jetstream()
        return self._js

    async def ok(self) -> bool:
        if not self.nc.is_connected:
            return False
        try:
            await self.nc.flush(timeout=2)
        except Exception:
            return False
        return True

    async def close(self) -> None:
        if not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 5)
            except Exception as e:  # closing a dead link must not stop shutdown
                log.debug("closing NATS: %s", e)

    async def _quiet(self, e: Exception) -> None:
        log.debug("NATS: %s", e)

    async def _disconnected(self) -> None:
        log.warning("NATS disconnected from %s", self.url)

    async def _reconnected(self) -> None:
        log.info("NATS reconnected to %s", self.url)


__all__ = ["NatsLink", "connect_temporal", "nats", "temporal_ok"]
