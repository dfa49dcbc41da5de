"""The dashboard reads and changes everything through shipway's own API, called in-process with
the session's token: a page can show or do only what that token may, with the API's checks,
audit entries and error messages."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import ASGIApp

PREFIX = "/api/v1"


class ApiError(Exception):
    """The API refused: its status, code and message, to show on the page."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Api:
    """One token's view of the API of the process serving the page."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params=params)

    async def call(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        """The JSON answer of METHOD PATH (under /api/v1); ApiError when it is refused."""
        response = await self._client.request(
            method, PREFIX + path, params=params, json=body, headers=self._headers
        )
        if response.status_code >= 400:
            raise refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def client(app: ASGIApp) -> httpx.AsyncClient:
    """A client that calls APP directly, with no socket, proxy or TLS set-up in between."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dashboard", trust_env=False
    )


def refusal(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return ApiError(
            response.status_code, "error", response.text[:200] or response.reason_phrase
        )
