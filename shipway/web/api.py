"""The dashboard reads and changes everything through shipway's own API, called in-process with
the session's token: a page can show or do only what that token may, with the API's checks,
audit entries and error messages. A call is one ASGI request handed straight to the app, with
no HTTP client, socket or URL parsing in between."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.types import ASGIApp, Message

PREFIX = "/api/v1"


class ApiError(Exception):
    """The API refused: its status, code and message, to show on the page."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Answer:
    """An app's whole answer to one request; header names in lower case."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Caller:
    """Calls an ASGI app in the same process and reads its whole answer."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def request(
        self,
        method: str,
        target: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """METHOD TARGET (a percent-encoded path, maybe with a query), BODY sent as JSON."""
        path, _, query = target.partition("?")
        if params:
            query = "&".join(q for q in (query, _query(params)) if q)
        raw = b"" if body is None else json.dumps(body).encode()
        sent = [(b"host", b"dashboard"), (b"content-length", str(len(raw)).encode())]
        if body is not None:
            sent.append((b"content-type", b"application/json"))
        sent += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": sent,
            "client": ("127.0.0.1", 0),
            "server": ("dashboard", 80),
        }
        request: list[Message] = [{"type": "http.request", "body": raw, "more_body": False}]
        done = asyncio.Event()
        status, answered, chunks = 500, {}, []

        async def receive() -> Message:
            if request:
                return request.pop()
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self._app(scope, receive, send)
        finally:
            done.set()
        return Answer(status, answered, b"".join(chunks))


def _query(params: Mapping[str, Any]) -> str:
    """PARAMS as a query string: a list is the name repeated, None is empty, a bool lower case."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    pairs = [
        (name, text(item))
        for name, value in params.items()
        for item in (value if isinstance(value, list | tuple) else [value])
    ]
    return urlencode(pairs)


class Api:
    """One token's view of the API of the process serving the page."""

    def __init__(self, caller: Caller, token: str) -> None:
        self._caller = caller
        self._headers = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params=params)

    async def call(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        """The JSON answer of METHOD PATH (under /api/v1); ApiError when it is refused."""
        answer = await self._caller.request(
            method, PREFIX + path, params=params, body=body, headers=self._headers
        )
        if answer.status >= 400:
            raise refusal(answer)
        if answer.status == 204 or not answer.body:
            return None
        return answer.json()


def refusal(answer: Answer) -> ApiError:
    try:
        error = answer.json()["error"]
        return ApiError(answer.status, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        text = answer.body[:200].decode(errors="replace")
        return ApiError(answer.status, "error", text or f"HTTP {answer.status}")
