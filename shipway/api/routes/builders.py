"""/api/v1/builders: the builder fleet, for the platform's owners."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from shipway.accounts.roles import Principal, Role
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.context import Context
from shipway.errors import Forbidden, ServiceError
from shipway.fleet import history, load, registry
from shipway.fleet.sizing import Policy, PoolLoad
from shipway.store.types import utcnow

router = APIRouter(prefix="/builders", tags=["builders"], route_class=Route)
fleet_router = APIRouter(prefix="/fleet", tags=["builders"], route_class=Route)


def builder_json(record: registry.BuilderRecord, now: float) -> dict[str, Any]:
    return {**asdict(record), "heartbeat_age": round(max(now - record.heartbeat_at, 0.0), 1)}


def platform_only(principal: Principal) -> None:
    principal.require(Role.OWNER)
    if not principal.platform_admin:
        raise Forbidden("the builder fleet is the platform's: this needs a platform owner token")


def fleet_services(request: Request, principal: Principal) -> Context:
    platform_only(principal)
    ctx = context(request)
    if ctx.nats is None:
        raise ServiceError("NATS is not reachable; the fleet cannot be read")
    return ctx


@router.get("", summary="Every builder, with its pool, slots, heartbeat and state")
async def list_builders(
    request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    """`state` is active, draining, drained, or lost (silent for 15 s)."""
    ctx = fleet_services(request, principal)
    assert ctx.nats is not None
    now = time.time()
    return [builder_json(r, now) for r in await registry.builders(ctx.nats.js, now)]


@router.post("/{builder_id}/drain", status_code=202, summary="Drain a builder")
async def drain_builder(
    builder_id: str, request: Request, principal: Principal = Depends(principal_from)
) -> dict[str, Any]:
    """The builder stops taking builds, finishes those it runs, then stops (`drained`)."""
    ctx = fleet_services(request, principal)
    assert ctx.nats is not None
    record = await registry.request_drain(ctx.nats.js, builder_id)
    return builder_json(record, time.time())


@fleet_router.get("/rules", summary="The dispatch rules, in the order they are tried")
def fleet_rules(
    request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    """Each rule's conditions and pool; the first that matches a build picks its pool, and a
    build no rule matches goes to pool `default`."""
    platform_only(principal)
    return [
        {"rule": index, "match": rule.describe(), "pool": rule.pool, **asdict(rule)}
        for index, rule in enumerate(context(request).rules.rules, 1)
    ]


@fleet_router.get("/history", summary="The build queue hour by hour: backlog and waits")
async def fleet_history(
    request: Request,
    hours: int = Query(history.DEFAULT_HOURS, ge=1, le=history.MAX_HOURS),
    principal: Principal = Depends(principal_from),
) -> list[dict[str, Any]]:
    """The last `hours` UTC hours, oldest first, the last one under way: `backlog` is the
    builds waiting for a builder at the hour's end, `started` those that started in it, and
    `wait_median` and `wait_max` how long they had waited (seconds; null when none started)."""
    platform_only(principal)
    ctx = context(request)

    def read() -> list[dict[str, Any]]:
        with ctx.store.transaction() as session:
            series = history.build_queue(session, utcnow(), hours)
        return [{**asdict(h), "start": h.start.isoformat()} for h in series]

    return await asyncio.to_thread(read)


@fleet_router.get("/pools", summary="Each pool's builders, slots in use, backlog and size")
async def fleet_pools(
    request: Request, principal: Principal = Depends(principal_from)
) -> list[dict[str, Any]]:
    """Per pool: live builders, slots and those in use (utilisation), the builders' average
    load, queued builds and how long the oldest has waited; with a policy, the size the
    autoscaler wants."""
    ctx = fleet_services(request, principal)
    return [pool_json(pool) for pool in await pools(ctx)]


@dataclass(frozen=True)
class Pool:
    name: str
    load: PoolLoad
    average_load: float
    policy: Policy | None
    desired: int | None


async def pools(ctx: Context) -> list[Pool]:
    """Every pool with a builder, a queued build or a policy, as it is now."""
    assert ctx.nats is not None
    now = time.time()
    fleet, loads = await load.measure(ctx.store, ctx.nats.js, now)
    names = sorted({*loads, *ctx.rules.pools})
    sizing = ctx.autoscaler.sizing if ctx.autoscaler is not None else {}
    return [
        Pool(
            name=name,
            load=loads.get(name, PoolLoad(0, 0, 0, 0)),
            average_load=load.average_load(fleet, name),
            policy=ctx.rules.pools.get(name),
            desired=sizing[name].desired if name in sizing else None,
        )
        for name in names
    ]


def pool_json(pool: Pool) -> dict[str, Any]:
    return {
        "pool": pool.name,
        **asdict(pool.load),
        "utilisation": round(load.utilisation(pool.load), 3),
        "average_load": round(pool.average_load, 3),
        "policy": asdict(pool.policy) if pool.policy is not None else None,
        "desired": pool.desired,
    }
