"""/api/v1/apps/{app}/overview: what an app's page shows (the app, its latest deployments and
releases, config, add-ons and delivery metrics), read in one transaction rather than six."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request

from shipway.accounts.roles import Principal
from shipway.addons import service as addons
from shipway.api.auth import context, principal_from
from shipway.api.routes.apps import info_of, with_instances
from shipway.api.routes.config import listing as config_listing
from shipway.api.routes.deployments import Limit, deployments_json
from shipway.api.routes.releases import releases_json
from shipway.api.routing import Route
from shipway.api.schemas import AppOverview, DeliveryMetricsOut
from shipway.apps import config
from shipway.apps import service as apps
from shipway.deploys import delivery
from shipway.deploys.delivery import DEFAULT_DAYS
from shipway.store import Store

router = APIRouter(prefix="/apps/{app}", tags=["apps"], route_class=Route)


@router.get(
    "/overview",
    response_model=AppOverview,
    summary="The app with its latest deployments and releases, config, add-ons and delivery",
)
async def overview(
    app: str, request: Request, limit: Limit = 50, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    """The same as `/info`, `/deployments`, `/releases`, `/env`, `/addons?app=` and
    `/delivery` answer, with LIMIT deployments and releases, read together."""
    ctx = context(request)
    app_id, found = await asyncio.to_thread(_read, ctx.store, request, principal, app, limit)
    await with_instances(ctx, app_id, found["info"])
    return found


def _read(
    store: Store, request: Request, principal: Principal, name: str, limit: int
) -> tuple[int, dict[str, Any]]:
    with store.transaction() as session:
        app = apps.get(session, principal, name)
        return app.id, {
            "info": info_of(request, session, app),
            "deployments": deployments_json(request, session, app, limit),
            "releases": releases_json(session, app, limit),
            "env": config_listing(config.list_vars(session, principal, name)),
            "addons": addons.listing(session, principal, name),
            "delivery": DeliveryMetricsOut.of(
                delivery.for_app(session, principal, name, DEFAULT_DAYS), name
            ),
        }
