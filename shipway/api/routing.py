"""The route class of every API router: bodies FastAPI reads as JSON are read by
shipway.jsontext, so its limits (depth, integers, lone surrogates) hold on every route."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from shipway import jsontext
from shipway.api.errors import Refused
from shipway.errors import ShipwayError


class JsonRequest(Request):
    """A request whose JSON body is read, and refused, as every other JSON shipway reads."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = jsontext.loads(await self.body(), "the body")
            except ShipwayError as e:
                raise Refused(e) from None
        return self._json


class Route(APIRoute):
    """An APIRoute that hands its endpoint a JsonRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return handle
