"""/api/v1/apps/{app}/formation: how many instances of each process type run; scale them."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.apps import service as apps
from shipway.deploys import service as deploys
from shipway.releases.manifest import Manifest
from shipway.runtime.instance import InstanceFailed
from shipway.store import Store
from shipway.store.tables import App

router = APIRouter(prefix="/apps/{app}/formation", tags=["apps"], route_class=Route)

EXAMPLE = {"web": 3, "worker": 0}


def formation_of(session: Session, app: App) -> dict[str, int]:
    """Instances per process type in production: each type of the live release runs one unless
    scaled, and a type scaled before any release has it is shown too."""
    live = deploys.current_release(session, deploys.production(session, app))
    commands = Manifest.from_json(live.manifest).commands() if live else {}
    return {**dict.fromkeys(commands, 1), **(app.formation or {})}


@router.get("", summary="Instances per process type in production")
def get_formation(
    app: str, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, int]:
    with context(request).store.transaction() as session:
        return formation_of(session, apps.get(session, principal, app))


@router.patch("", summary="Scale process types")
async def scale(
    app: str,
    request: Request,
    body: dict[str, Any] = Body(
        description="process type → instances (0-20); types left out keep their count",
        examples=[EXAMPLE],
    ),
    principal: Principal = Depends(principal_from),
) -> dict[str, int]:
    """Store the new counts, then restart the live environments with them without downtime
    (previews run at most one instance of each type). Returns the whole formation."""
    ctx = context(request)
    app_id, before, stored, formation = await asyncio.to_thread(
        _scale, ctx.store, principal, app, body
    )
    if ctx.runtime is not None:
        try:
            await ctx.runtime.scale(app_id, stored)
        except InstanceFailed:
            # The running instances were kept: so is the formation they run.
            await asyncio.to_thread(_revert, ctx.store, principal, app_id, before)
            raise
    return formation


def _scale(
    store: Store, principal: Principal, name: str, counts: dict[str, Any]
) -> tuple[int, dict[str, int], dict[str, int], dict[str, int]]:
    with store.transaction() as session:
        before = dict(apps.get(session, principal, name).formation or {})
        app = apps.scale(session, principal, name, counts)
        return app.id, before, dict(app.formation), formation_of(session, app)


def _revert(store: Store, principal: Principal, app_id: int, formation: dict[str, int]) -> None:
    with store.transaction() as session:
        app = session.get(App, app_id)
        if app is not None:
            apps.revert_scale(session, principal, app, formation)
