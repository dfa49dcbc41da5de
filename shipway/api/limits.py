"""Refuse request bodies over a size limit with 413, before they are read whole."""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipway.api.errors import error_body

MIB = 1024 * 1024


class _TooLarge(HTTPException):
    """Raised from receive() once the body passes the limit; the app's handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    return f"request body is larger than the {limit / MIB:g} MiB limit"


class BodyLimit:
    """ASGI middleware: bodies larger than LIMIT bytes get 413 whatever their framing.

    Paths matching one of the EXEMPT regular expressions (uploads, git pushes) enforce their
    own, larger limits."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MIB,
        exempt: tuple[str, ...] = (),
        larger: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """LARGER: (path regular expression, limit) pairs for paths that take more."""
        self.app = app
        self.limit = limit
        self.exempt = re.compile("|".join(exempt)) if exempt else None
        self.larger = tuple((re.compile(pattern), size) for pattern, size in larger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt and self.exempt.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        limit = next((size for p, size in self.larger if p.match(scope["path"])), self.limit)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(send, limit)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps(error_body("payload_too_large", too_large_message(limit))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
