"""/api/v1/apps/{app}/environments/{env}: remove a preview environment (a deleted branch's)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request, Response

from shipway.accounts.roles import Principal
from shipway.api.auth import principal_from, services
from shipway.api.routing import Route
from shipway.deploys import service as deploys
from shipway.store import Store

router = APIRouter(prefix="/apps/{app}/environments", tags=["apps"], route_class=Route)


@router.delete("/{environment}", status_code=204, summary="Remove a preview environment")
async def delete_environment(
    app: str, environment: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    """Its deployments under way are superseded, its host stops answering (404), and its
    deployments and builds are deleted. Production cannot be removed: delete the app."""
    ctx = services(request)
    app_id = await asyncio.to_thread(_remove, ctx.store, principal, app, environment)
    if ctx.runtime is not None:
        await ctx.runtime.remove(app_id, environment)
    return Response(status_code=204)


def _remove(store: Store, principal: Principal, app: str, environment: str) -> int:
    with store.transaction() as session:
        return deploys.remove_preview(session, principal, app, environment)
