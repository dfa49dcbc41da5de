"""GET /metrics: the builder fleet in Prometheus' text format, for a platform owner's token
(a scrape job's `authorization: {credentials: TOKEN}`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from shipway.accounts.roles import Principal
from shipway.api.auth import principal_from
from shipway.api.routes.builders import Pool, fleet_services, pools
from shipway.api.routing import Route
from shipway.fleet import load

router = APIRouter(tags=["builders"], route_class=Route)

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


@router.get("/metrics", response_class=PlainTextResponse, summary="Fleet metrics for Prometheus")
async def metrics(request: Request, principal: Principal = Depends(principal_from)) -> str:
    ctx = fleet_services(request, principal)
    return exposition(await pools(ctx))


def exposition(found: Iterable[Pool]) -> str:
    found = list(found)
    lines = []
    for name, help_text, value in SERIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for pool in found:
            measured = value(pool)
            if measured is not None:
                lines.append(f'{name}{{pool="{pool.name}"}} {float(measured):g}')
    return "\n".join(lines) + "\n"
