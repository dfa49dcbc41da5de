"""The control plane's handle on this machine's node: a client of the node's private socket
(its server side is shipway.nodes.control), with the runtime's own method names; and the
abstract sockets by which the node and the control plane find each other."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from shipway.errors import ServiceError

#: Seconds a call may take: scaling waits for the new instances to be healthy.
TIMEOUT = httpx.Timeout(10.0, read=600.0)
#: Seconds the node has to give its series, well within a Prometheus scrape's own timeout.
SCRAPE_TIMEOUT = 5.0


def _abstract(kind: str, data_dir: str) -> str:
    """An abstract unix socket of DATA_DIR: one per data dir, free of path length limits."""
    return f"\0shipway-{kind}-" + hashlib.sha256(data_dir.encode()).hexdigest()[:24]


def socket_name(data_dir: str) -> str:
    """The node's control socket."""
    return _abstract("node", data_dir)


def api_socket_name(data_dir: str) -> str:
    """The control plane's API socket, which the node's router forwards to."""
    return _abstract("api", data_dir)


class NodeClient:
    """The control plane's handle on the node: what the API and workers call as `runtime`."""

    def __init__(self, data_dir: str) -> None:
        transport = httpx.AsyncHTTPTransport(uds=socket_name(data_dir))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://node", timeout=TIMEOUT)

    async def about(self) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", "/")
        return found

    async def describe(self, app_id: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call("GET", f"/apps/{app_id}")
        return found

    async def scale(self, app_id: int, formation: dict[str, int]) -> None:
        await self._call("POST", "/scale", {"app_id": app_id, "formation": formation})

    async def refresh(self, app_id: int) -> None:
        await self._call("POST", "/refresh", {"app_id": app_id})

    async def remove(self, app_id: int, environment: str | None = None) -> list[str]:
        body = {"app_id": app_id, "environment": environment}
        removed: list[str] = await self._call("POST", "/remove", body)
        return removed

    async def metrics(self) -> str:
        """The node's series in Prometheus' text format; none from a node of a version that
        has none (it runs on after an upgrade with --keep-apps)."""
        response = await self._send("GET", "/metrics", timeout=SCRAPE_TIMEOUT, absent=404)
        return response.text if response.status_code == 200 else ""

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        return (await self._send(method, path, json=body)).json()

    async def _send(
        self, method: str, path: str, *, absent: int | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The node's answer: 200, or ABSENT when it may say the path is not there."""
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ServiceError(f"this machine's node does not answer: {e}") from e
        if response.status_code not in (200, absent):
            raise ServiceError(f"this machine's node failed: {response.text[:200]}")
        return response
