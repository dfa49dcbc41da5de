"""Assemble the FastAPI application: routes, error mapping and the body limit."""

from __future__ import annotations

from fastapi import FastAPI

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


def create_app(services: Context) -> BodyLimit:
    """The ASGI app of one shipway process, wrapped in the 1 MiB body limit."""
    subscribers.record_events()
    subscribers.measure_events()
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
    app.state.services = services
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
    web.install(app, services)
    return BodyLimit(app, exempt=UPLOADS, larger=LARGER)
