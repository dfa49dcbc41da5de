"""The node's side of its private socket: a small HTTP API through which the control plane
asks it to change what runs (the client is shipway.nodes.client). It is the node process's
edge, as shipway.api is the control plane's."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipway import metrics
from shipway.runtime.agent import Runtime


def app(runtime: Runtime, info: dict[str, Any]) -> Starlette:
    """The node's side: each route calls the runtime method of its name."""

    async def describe(request: Request) -> JSONResponse:
        return JSONResponse(runtime.describe(int(request.path_params["app_id"])))

    async def scale(request: Request) -> JSONResponse:
        body = await request.json()
        await runtime.scale(int(body["app_id"]), {k: int(v) for k, v in body["formation"].items()})
        return JSONResponse({})

    async def refresh(request: Request) -> JSONResponse:
        await runtime.refresh(int((await request.json())["app_id"]))
        return JSONResponse({})

    async def remove(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse(await runtime.remove(int(body["app_id"]), body.get("environment")))

    async def about(_: Request) -> JSONResponse:
        return JSONResponse(info)

    async def series(_: Request) -> Response:
        """The data plane's series (router, instances), which the control plane's /metrics
        appends to its own."""
        return Response(metrics.text(metrics.DATA_PLANE), media_type=metrics.CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/", about),
            Route("/metrics", series),
            Route("/apps/{app_id:int}", describe),
            Route("/scale", scale, methods=["POST"]),
            Route("/refresh", refresh, methods=["POST"]),
            Route("/remove", remove, methods=["POST"]),
        ]
    )
