"""Assemble the FastAPI application: routes, error mapping and the body limit."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

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
    api = APIRouter(prefix=API_PREFIX, route_class=Route)
    api.include_router(apps.router)
    api.include_router(overview.router)
    api.include_router(formation.router)
    api.include_router(environments.router)
    api.include_router(releases.router)
    api.include_router(config.router)
    api.include_router(addons.router)
    api.include_router(connections.router)
    api.include_router(tokens.router)
    api.include_router(tokens.whoami_router)
    api.include_router(organizations.router)
    api.include_router(deployments.router)
    api.include_router(delivery.router)
    api.include_router(logs.router)
    api.include_router(functions.apply_router)
    api.include_router(functions.router)
    api.include_router(functions.runs_router)
    api.include_router(audit.router)
    api.include_router(builders.router)
    api.include_router(builders.fleet_router)
    api.include_router(buildwork.router)
    api.include_router(images.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(git.router)
    app.include_router(webhooks.router)
    app.include_router(functions.calls)
    web.install(app, services)
    return BodyLimit(app, exempt=UPLOADS, larger=LARGER)
