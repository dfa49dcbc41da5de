"""Assemble the FastAPI application: routes, error mapping and the body limit."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from shipway import __version__, subscribers, web
from shipway.api import errors
from shipway.api.limits import MIB, BodyLimit
from shipway.api.routes import (
    addons,
    apps,
    audit,
    builders,
    buildwork,
    config,
    connections,
    delivery,
    deployments,
    environments,
    formation,
    functions,
    git,
    health,
    images,
    logs,
    metrics,
    organizations,
    overview,
    releases,
    tokens,
    webhooks,
)
from shipway.api.routing import Route
from shipway.api.schemas import ErrorOut
from shipway.context import Context
from shipway.web import viewer

API_PREFIX = "/api/v1"

#: Paths that take large bodies and enforce their own limit (SHIPWAY_MAX_SOURCE_MB).
UPLOADS = (
    rf"^{API_PREFIX}/apps/[^/]+/deployments$",
    r"^/git/",
    rf"^{API_PREFIX}/builder/layers/",
    rf"^{API_PREFIX}/builder/images/",
    rf"^{API_PREFIX}/images:import$",
)
#: Bodies allowed more than the default: a batch of audit entries, each up to 64 KiB.
LARGER = (
    (rf"^{API_PREFIX}/audit/entries$", 64 * MIB + MIB),
    (rf"^{API_PREFIX}/builder/builds/[^/]+/log$", 64 * MIB),
    (r"^/hooks/", webhooks.MAX_BODY),
)

#: Every operation may answer a 4xx error, always as JSON whatever its usual content.
REFUSED = {
    "model": ErrorOut,
    "description": "refused; the message says why",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}

DESCRIPTION = """shipway's control plane. Every route but `/healthz` needs
`Authorization: Bearer TOKEN`. Errors are `{"error": {"code", "message", "details"}}`."""


class Served:
    """ASGI: the process's routes serving SERVICES, which each request finds in its state
    (`request.state.services`) with the dashboard made for them (`request.state.dashboard`)."""

    def __init__(self, routes: ASGIApp, services: Context) -> None:
        self.routes = routes
        self.services = services
        self.state: dict[str, Any] = {
            "services": services,
            "dashboard": viewer.dashboard(self, services),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            scope["state"] = {**scope.get("state", {}), **self.state}
        await self.routes(scope, receive, send)


def create_app(services: Context) -> Served:
    """The ASGI app serving SERVICES."""
    subscribers.record_events()
    subscribers.measure_events()
    return Served(_routes(), services)


@functools.cache
def _routes() -> BodyLimit:
    """Every route and handler, wrapped in the 1 MiB body limit: made once per process, because
    FastAPI analyses each route again for each app (at the first request it serves)."""
    app = FastAPI(
        title="shipway",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        responses={"4XX": REFUSED},
    )
    app.router.route_class = Route
    errors.install(app)
    # Straight into the app, not through a router of their own: FastAPI analyses every route
    # again at each level it is included in.
    for router in (
        apps.router,
        overview.router,
        formation.router,
        environments.router,
        releases.router,
        config.router,
        addons.router,
        connections.router,
        tokens.router,
        tokens.whoami_router,
        organizations.router,
        deployments.router,
        delivery.router,
        logs.router,
        functions.apply_router,
        functions.router,
        functions.runs_router,
        audit.router,
        builders.router,
        builders.fleet_router,
        buildwork.router,
        images.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(git.router)
    app.include_router(webhooks.router)
    app.include_router(functions.calls)
    web.install(app)
    return BodyLimit(app, exempt=UPLOADS, larger=LARGER)
