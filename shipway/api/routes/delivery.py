"""/api/v1/apps/{app}/delivery and /api/v1/delivery: the four delivery (DORA) metrics of an
app's production, or of every app of the token's organization, over the last days."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import DeliveryMetricsOut
from shipway.deploys import delivery
from shipway.deploys.delivery import DEFAULT_DAYS, MAX_DAYS

router = APIRouter(tags=["delivery"], route_class=Route)

Days = Annotated[
    int,
    Query(ge=1, le=MAX_DAYS, description="the window: the last N UTC days, today included"),
]


@router.get(
    "/apps/{app}/delivery",
    response_model=DeliveryMetricsOut,
    summary="The app's delivery metrics: deploy frequency, lead time, failure rate, restore time",
)
def app_delivery(
    app: str,
    request: Request,
    days: Days = DEFAULT_DAYS,
    principal: Principal = Depends(principal_from),
) -> DeliveryMetricsOut:
    """Its production deployments over the window, and day by day (docs/delivery.md)."""
    with context(request).store.transaction() as session:
        return DeliveryMetricsOut.of(delivery.for_app(session, principal, app, days), app)


@router.get(
    "/delivery",
    response_model=DeliveryMetricsOut,
    summary="The organization's delivery metrics, every app's production together",
)
def organization_delivery(
    request: Request,
    days: Days = DEFAULT_DAYS,
    principal: Principal = Depends(principal_from),
) -> DeliveryMetricsOut:
    with context(request).store.transaction() as session:
        return DeliveryMetricsOut.of(delivery.for_organization(session, principal, days), None)
