"""/healthz: the state of the store, Temporal and NATS, without auth."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shipway import __version__
from shipway.api.auth import context
from shipway.api.routing import Route

router = APIRouter(route_class=Route)


@router.get("/healthz", tags=["health"], summary="State of each part; 503 while degraded")
async def healthz(request: Request, deep: bool = False) -> JSONResponse:
    """With ?deep=true a probe workflow also runs through the control workers."""
    report = await context(request).health(deep=deep)
    report["version"] = __version__
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)
