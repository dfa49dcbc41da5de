"""Clients for Temporal and NATS that survive their server restarting, and say if it is up."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from temporalio.client import Client as TemporalClient
from temporalio.service import TLSConfig

from shipway.errors import ServiceError
from shipway.natsauth import Access
from shipway.settings import Settings
from shipway.tracing import temporal_interceptors

log = logging.getLogger(__name__)


class _Refused(Exception):
    """Raised when a server turned our credentials down: retrying will not change that."""


def _is_refusal(e: Exception) -> bool:
    text = str(e).lower()
    return isinstance(e, nats.errors.AuthorizationError) or "authorization" in text


async def _retry(what: str, attempt: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return await attempt()
        except _Refused as e:
            raise ServiceError(f"{what} refused the credentials: {e}") from e
        except Exception as e:  # the server may still be starting; any failure is retried
            last = e
            await asyncio.sleep(0.2)
    raise ServiceError(f"cannot reach {what}: {last}") from last


def temporal_security(settings: Settings) -> dict[str, Any]:
    """How to reach an external Temporal: TLS (a CA of its own, mTLS) and an API key."""
    tls: bool | TLSConfig = settings.temporal_tls
    if settings.temporal_tls_ca or settings.temporal_tls_cert:

        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path is not None else None

        tls = TLSConfig(
            server_root_ca_cert=read(settings.temporal_tls_ca),
            client_cert=read(settings.temporal_tls_cert),
            client_private_key=read(settings.temporal_tls_key),
        )
    return {"tls": tls, "api_key": settings.temporal_api_key}


async def connect_temporal(
    address: str,
    namespace: str,
    timeout: float = 30.0,
    *,
    tls: bool | TLSConfig = False,
    api_key: str | None = None,
) -> TemporalClient:
    """A Temporal client, retrying while the server comes up; raises ServiceError after TIMEOUT.
    With traces on, its workflows and activities (its workers' too) carry the caller's span."""

    async def attempt() -> TemporalClient:
        return await TemporalClient.connect(
            address,
            namespace=namespace,
            tls=tls,
            api_key=api_key,
            interceptors=temporal_interceptors(),
        )

    client: TemporalClient = await _retry(f"Temporal at {address}", attempt, timeout)
    return client


async def temporal_ok(client: TemporalClient) -> bool:
    try:
        return await client.service_client.check_health(timeout=timedelta(seconds=2))
    except Exception:
        return False


class NatsLink:
    """One NATS connection that reconnects forever, with JetStream on top, authenticated as
    ACCESS says: never anonymously, unless the operator's URL itself carries no credentials."""

    def __init__(self, url: str, access: Access | None = None) -> None:
        self.url = url
        self.access = access or Access()
        self.nc: NatsClient = NatsClient()
        self._js: JetStreamContext | None = None
        self._refused: Exception | None = None
        self._connected = False

    async def connect(self, timeout: float = 30.0) -> None:
        async def attempt() -> None:
            try:
                await self.nc.connect(
                    self.url,
                    name=f"shipway-{self.access.role or 'client'}",
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    connect_timeout=2,
                    error_cb=self._error,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    **self.access.options(),
                )
            except _Refused:
                await self.nc.close()
                self.nc = NatsClient()
                raise
            self._connected = True

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

    async def _error(self, e: Exception) -> None:
        if not _is_refusal(e):
            log.debug("NATS: %s", e)
            return
        if self._refused is None:
            log.error("NATS at %s refused shipway's credentials: %s", self.url, e)
        self._refused = e
        if not self._connected:
            # Connecting for the first time, nats-py would try again forever: raising here
            # ends its connect().
            raise _Refused(e)

    async def _disconnected(self) -> None:
        log.warning("NATS disconnected from %s", self.url)

    async def _reconnected(self) -> None:
        self._refused = None
        log.info("NATS reconnected to %s", self.url)


__all__ = ["NatsLink", "connect_temporal", "nats", "temporal_ok"]
