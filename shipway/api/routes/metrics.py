"""GET /metrics: every part of shipway in Prometheus' text format, for a platform owner's
token (a scrape job's `authorization: {credentials: TOKEN}`).

One scrape gives the control plane's own series (shipway.metrics), each part's health and the
builder pools as they are now, then the node's series (router, instances), which the control
plane asks this machine's node for over its private socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from nats.errors import Error as NatsError
from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from shipway import metrics
from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routes.builders import Pool, platform_only, pools
from shipway.api.routing import Route
from shipway.context import Context
from shipway.errors import ShipwayError
from shipway.fleet import load

log = logging.getLogger(__name__)

router = APIRouter(tags=["builders"], route_class=Route)

#: Seconds the pools may take to be read before a scrape goes on without them.
POOLS_TIMEOUT = 5.0

#: (name, help, value of a pool); every series is labelled with its pool.
SERIES: tuple[tuple[str, str, Callable[[Pool], float | None]], ...] = (
    ("shipway_pool_builders", "Active builders.", lambda p: p.load.builders),
    ("shipway_pool_slots", "Build slots of the active builders.", lambda p: p.load.slots),
    ("shipway_pool_slots_busy", "Build slots in use.", lambda p: p.load.busy),
    (
        "shipway_pool_utilisation",
        "Share of the build slots in use.",
        lambda p: load.utilisation(p.load),
    ),
    (
        "shipway_pool_builder_load",
        "Mean share of its slots each builder has in use.",
        lambda p: p.average_load,
    ),
    ("shipway_pool_queued_builds", "Builds waiting for a builder.", lambda p: p.load.queued),
    (
        "shipway_pool_oldest_wait_seconds",
        "How long the oldest queued build has waited.",
        lambda p: p.load.oldest_wait,
    ),
    ("shipway_pool_desired_builders", "Builders the autoscaler wants.", lambda p: p.desired),
)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Every part of shipway, for Prometheus",
    responses={200: {"content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def scrape(
    request: Request, principal: Principal = Depends(principal_from)
) -> PlainTextResponse:
    """Builds, deployments, functions, audit ingest, the health of each part (`shipway_up`),
    the builder pools, and the node's router and instances: see docs/metrics.md."""
    platform_only(principal)
    ctx = context(request)
    health, found, node = await asyncio.gather(ctx.recent_health(), _pools(ctx), _node(ctx))
    parts = {name: part["status"] == "ok" for name, part in health["components"].items()}
    if ctx.runtime is not None:
        parts["node"] = node is not None
    scraped = metrics.Scraped([metrics.up(parts), *pool_families(found)])
    body = metrics.text(metrics.CONTROL_PLANE) + metrics.text(scraped) + (node or "")
    return PlainTextResponse(body, media_type=metrics.CONTENT_TYPE)


def pool_families(found: Iterable[Pool]) -> list[Metric]:
    """The pool gauges, as the fleet is now."""
    found = list(found)
    families: list[Metric] = []
    for name, help_text, value in SERIES:
        family = GaugeMetricFamily(name, help_text, labels=["pool"])
        for pool in found:
            measured = value(pool)
            if measured is not None:
                family.add_metric([pool.name], float(measured))
        families.append(family)
    return families


async def _pools(ctx: Context) -> list[Pool]:
    """The pools, or none while NATS or the store cannot say (`shipway_up` tells which)."""
    if ctx.nats is None:
        return []
    try:
        return await asyncio.wait_for(pools(ctx), POOLS_TIMEOUT)
    except (ShipwayError, NatsError, SQLAlchemyError, OSError, TimeoutError) as e:
        log.warning("metrics: the builder pools cannot be read now: %s", e)
        return []


async def _node(ctx: Context) -> str | None:
    """The node's series; None when it does not answer (or there is no node)."""
    if ctx.runtime is None:
        return None
    try:
        return await ctx.runtime.metrics()
    except ShipwayError as e:
        log.warning("metrics: %s", e.message)
        return None
