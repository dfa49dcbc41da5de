"""/api/v1/apps/{app}/environments/{env}: remove a preview environment (a deleted branch's)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.deploys import previews

router = APIRouter(prefix="/apps/{app}/environments", tags=["apps"], route_class=Route)


@router.delete("/{environment}", status_code=204, summary="Remove a preview environment")
async def delete_environment(
    app: str, environment: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    """Its deployments under way are superseded, its host stops answering (404), and its
    deployments and builds are deleted. Production cannot be removed: delete the app."""
    ctx = context(request)
    await previews.remove(ctx.store, ctx.runtime, principal, app, environment)
    return Response(status_code=204)
