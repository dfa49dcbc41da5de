"""/api/v1/apps/{app}/releases and /rollback: an app's immutable releases; deploy one again."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routes.apps import tenant
from shipway.api.routes.deployments import Limit, deployment_json, seconds
from shipway.api.routing import Route
from shipway.api.schemas import Rollback
from shipway.apps import service as apps
from shipway.apps.service import PRODUCTION
from shipway.deploys import launch
from shipway.deploys import service as deploys
from shipway.store import Store
from shipway.store.tables import App, Deployment, Release

router = APIRouter(prefix="/apps/{app}", tags=["releases"], route_class=Route)


@router.get("/releases", summary="The app's releases, newest first")
def list_releases(
    app: str,
    request: Request,
    limit: Limit = 50,
    principal: Principal = Depends(principal_from),
) -> list[dict[str, Any]]:
    with context(request).store.transaction() as session:
        return releases_json(session, apps.get(session, principal, app), limit)


def releases_json(session: Session, app: App, limit: int) -> list[dict[str, Any]]:
    """APP's latest LIMIT releases as the API shows them, newest first."""
    out = []
    for r, build in deploys.releases_of(session, app, limit):
        out.append(
            {
                "version": r.version,
                "description": r.description,
                "digest": r.digest,
                "build_id": r.build_id,
                "commit": build.commit_sha if build else None,
                "stack": r.manifest.get("stack"),
                "processes": r.manifest.get("processes", {}),
                "layers": r.manifest.get("layers", []),
                # A Dockerfile app's release: its image, by digest.
                "image": r.manifest.get("image"),
                "bases": r.manifest.get("bases", {}),
                "status": "ready",
                "duration": seconds(build.started_at, build.finished_at) if build else None,
                "created_at": r.created_at.isoformat(),
            }
        )
    return out


@router.post("/rollback", status_code=202, summary="Deploy an earlier release of production again")
async def rollback(
    app: str,
    request: Request,
    body: Rollback | None = None,
    principal: Principal = Depends(principal_from),
) -> JSONResponse:
    """Release `to` (default: the one live before the current one) is copied, code and config
    as they were, to a new release, which is deployed like a push. The answer is the new
    deployment; follow it at `GET /api/v1/deployments/{id}`."""
    ctx = context(request)
    to = body.to if body is not None else None
    deployment, shown = await asyncio.to_thread(_rollback, ctx.store, request, principal, app, to)
    await launch.deploy_release(ctx.store, ctx.temporal, deployment)
    return JSONResponse(shown, status_code=202)


def _rollback(
    store: Store, request: Request, principal: Principal, app: str, to: int | None
) -> tuple[Deployment, dict[str, Any]]:
    with store.transaction() as session:
        deployment = deploys.rollback(session, principal, app, to)
        release = session.get(Release, deployment.release_id)
        assert release is not None
        organization = tenant(session, principal.organization_id)
        shown = deployment_json(request, deployment, app, PRODUCTION, release.version, organization)
        shown["description"] = release.description
        return deployment, shown
