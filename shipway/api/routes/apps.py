"""/api/v1/apps: create, list, get, change and delete a tenant's apps; what runs of one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routes.formation import formation_of
from shipway.api.routing import Route
from shipway.api.schemas import (
    AppCreate,
    AppInfo,
    AppOut,
    AppUpdate,
    ConnectionOut,
    DeliveryOut,
    EnvironmentInfo,
    InstanceOut,
    ReleaseRef,
)
from shipway.apps import hosts, service
from shipway.context import Context
from shipway.deploys import service as deploys
from shipway.store import Store
from shipway.store.tables import App, Organization
from shipway.webhooks import connections

router = APIRouter(prefix="/apps", tags=["apps"], route_class=Route)


def tenant(session: Session, organization_id: int) -> str | None:
    """The organization's label in app hosts: None for the platform's own organization."""
    return hosts.label(session.get(Organization, organization_id))


def app_url(request: Request, app: str, environment: str, organization: str | None) -> str:
    settings = context(request).settings
    host = hosts.hostname(app, environment, settings.base_domain, organization)
    return hosts.url(host, settings.port)


def _urls(request: Request, app: str, organization: str | None) -> Callable[[str], str]:
    return lambda environment: app_url(request, app, environment, organization)


def _out(request: Request, session: Session, app: App) -> AppOut:
    return AppOut.of(app, _urls(request, app.name, tenant(session, app.organization_id)))


@router.post("", status_code=201, response_model=AppOut, summary="Create an app")
def create_app(
    body: AppCreate, request: Request, principal: Principal = Depends(principal_from)
) -> AppOut:
    with context(request).store.transaction() as session:
        app = service.create(session, principal, body.name, plan=body.plan, region=body.region)
        return _out(request, session, app)


@router.get("", response_model=list[AppOut], summary="List the tenant's apps")
def list_apps(request: Request, principal: Principal = Depends(principal_from)) -> list[AppOut]:
    with context(request).store.transaction() as session:
        organization = tenant(session, principal.organization_id)
        return [
            AppOut.of(a, _urls(request, a.name, organization))
            for a in service.list_apps(session, principal)
        ]


@router.get("/{name}", response_model=AppOut, summary="Get one app")
def get_app(name: str, request: Request, principal: Principal = Depends(principal_from)) -> AppOut:
    with context(request).store.transaction() as session:
        return _out(request, session, service.get(session, principal, name))


@router.get(
    "/{name}/info",
    response_model=AppInfo,
    summary="One app with its formation, live releases and instances",
)
async def app_info(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> AppInfo:
    """Each environment's URL and live release from the store, and its instances as this
    machine's node sees them (state null when no node runs apps)."""
    ctx = context(request)
    app_id, info = await asyncio.to_thread(_info, ctx.store, request, principal, name)
    await with_instances(ctx, app_id, info)
    return info


def _info(store: Store, request: Request, principal: Principal, name: str) -> tuple[int, AppInfo]:
    with store.transaction() as session:
        app = service.get(session, principal, name)
        return app.id, info_of(request, session, app)


def info_of(request: Request, session: Session, app: App) -> AppInfo:
    """APP with its formation, each environment's live release and its repository; no
    instances yet (with_instances adds them)."""
    out = _out(request, session, app)
    environments = []
    for env, shown in zip(app.environments, out.environments, strict=True):
        live = deploys.current_release(session, env)
        environments.append(
            EnvironmentInfo(
                **shown.model_dump(),
                release=ReleaseRef.of(live) if live else None,
                state=None,
                instances=[],
            )
        )
    connection = connections.find(session, app.id)
    return AppInfo(
        app=out,
        formation=formation_of(session, app),
        environments=environments,
        connection=ConnectionOut.of(connection, app.name, str(request.base_url))
        if connection
        else None,
        deliveries=[DeliveryOut.model_validate(d) for d in connections.recent(session, app.id)],
    )


async def with_instances(ctx: Context, app_id: int, info: AppInfo) -> None:
    """Each of INFO's environments with its state and instances as this machine's node sees
    them (left null when no node runs apps)."""
    if ctx.runtime is None:
        return
    running = {entry["environment"]: entry for entry in await ctx.runtime.describe(app_id)}
    for env in info.environments:
        found: dict[str, Any] = running.get(env.name, {"state": "stopped", "instances": []})
        env.state = found["state"]
        env.instances = [InstanceOut(**i) for i in found["instances"]]


@router.patch("/{name}", response_model=AppOut, summary="Change an app's settings")
async def update_app(
    name: str, body: AppUpdate, request: Request, principal: Principal = Depends(principal_from)
) -> AppOut:
    """Fields left out keep their value; `"idle_timeout": null` turns sleeping off. Running
    instances take the new idle timeout at once, a new health check at their next start."""

    def update() -> tuple[AppOut, int]:
        with context(request).store.transaction() as session:
            app = service.update(
                session,
                principal,
                name,
                plan=body.plan,
                build_network=body.build_network,
                idle_timeout=(
                    body.idle_timeout if "idle_timeout" in body.model_fields_set else service.KEEP
                ),
                health_path=body.health_path,
                health_timeout=body.health_timeout,
            )
            return _out(request, session, app), app.id

    out, app_id = await asyncio.to_thread(update)
    runtime = context(request).runtime
    if runtime is not None:
        await runtime.refresh(app_id)
    return out


@router.delete("/{name}", status_code=204, summary="Delete an app and all it owns")
async def delete_app(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    """Its hosts stop answering (404) once it is deleted."""
    ctx = context(request)
    app_id = await asyncio.to_thread(_delete, ctx.store, principal, name)
    if ctx.runtime is not None:
        await ctx.runtime.remove(app_id)
    return Response(status_code=204)


def _delete(store: Store, principal: Principal, name: str) -> int:
    with store.transaction() as session:
        return service.delete(session, principal, name)
