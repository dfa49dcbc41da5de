"""/api/v1/addons and /api/v1/apps/{name}/addons: databases and caches attached to apps."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from shipway.accounts.roles import Principal
from shipway.addons import service as addons
from shipway.addons.servers import Servers
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import AddonCreate
from shipway.apps.secretbox import SecretBox
from shipway.client.upload import DEPLOYMENT_HEADER
from shipway.context import Context
from shipway.deploys import launch
from shipway.errors import ServiceError
from shipway.store.tables import Deployment

router = APIRouter(tags=["addons"], route_class=Route)


def _servers(ctx: Context) -> Servers:
    if ctx.addons is None:
        raise ServiceError("add-ons are not available in this process")
    return ctx.addons


async def _roll_out(ctx: Context, deployment: Deployment | None, response: Response) -> None:
    if deployment is not None:
        await launch.deploy_release(ctx.store, ctx.temporal, deployment)
        response.headers[DEPLOYMENT_HEADER] = str(deployment.id)


@router.post(
    "/apps/{name}/addons", status_code=201, summary="Create an add-on and attach it to the app"
)
async def create_addon(
    name: str,
    body: AddonCreate,
    request: Request,
    response: Response,
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    """Provisions the database or server, sets its URL as a secret config var and deploys the
    release with it; the `X-Shipway-Deployment` header names that deployment."""
    ctx = context(request)
    created = await addons.create(
        ctx.store,
        _servers(ctx),
        SecretBox.load(ctx.settings.data_dir),
        principal,
        name,
        body.kind,
        name=body.name,
        env_var=body.env_var,
        fork=body.fork,
    )
    await _roll_out(ctx, created.deployment, response)
    return created.addon


@router.get("/addons", summary="List the organization's add-ons")
def list_addons(
    request: Request, app: str | None = None, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    with context(request).store.transaction() as session:
        return addons.listing(session, principal, app)


@router.get("/addons/{addon}", summary="An add-on, its server and its backups")
def addon_info(
    addon: str, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    ctx = context(request)
    with ctx.store.transaction() as session:
        return addons.info(session, principal, addon, _servers(ctx))


@router.delete("/addons/{addon}", summary="Detach an add-on and drop its data")
async def destroy_addon(
    addon: str,
    request: Request,
    response: Response,
    confirm: str | None = None,
    principal: Principal = Depends(principal_from),
) -> dict[str, Any]:
    """`confirm` must name the add-on's app; the release without its config var is deployed."""
    ctx = context(request)
    deployment = await addons.destroy(
        ctx.store, _servers(ctx), SecretBox.load(ctx.settings.data_dir), principal, addon, confirm
    )
    await _roll_out(ctx, deployment, response)
    return {"destroyed": addon}


@router.get("/addons/{addon}/backups", summary="An add-on's backups, newest first")
async def list_backups(
    addon: str, request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    ctx = context(request)

    def read() -> list[dict[str, Any]]:
        with ctx.store.transaction() as session:
            return addons.backups(_servers(ctx), addons.get(session, principal, addon)[0])

    return await asyncio.to_thread(read)


@router.post("/addons/{addon}/backups", status_code=201, summary="Back an add-on up")
async def back_up(
    addon: str, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    ctx = context(request)
    return await addons.back_up(ctx.store, _servers(ctx), principal, addon)


@router.post("/addons/{addon}/backups/{backup}/restore", summary="Restore an add-on's backup")
async def restore(
    addon: str, backup: str, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    ctx = context(request)
    return await addons.restore(ctx.store, _servers(ctx), principal, addon, backup)
