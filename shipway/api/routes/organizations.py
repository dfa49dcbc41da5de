"""/api/v1/orgs: tenants. Platform owners create them; everyone sees their own."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from shipway.accounts import organizations
from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import OrganizationCreate, OrganizationCreated, OrganizationOut

router = APIRouter(prefix="/orgs", tags=["organizations"], route_class=Route)


@router.post("", status_code=201, response_model=OrganizationCreated, summary="Create a tenant")
def create_org(
    body: OrganizationCreate, request: Request, principal: Principal = Depends(principal_from)
) -> OrganizationCreated:
    with context(request).store.transaction() as session:
        made = organizations.create(session, principal, body.name)
        return OrganizationCreated(
            **OrganizationOut.of(made.organization).model_dump(),
            owner_token=made.owner_token.secret,
        )


@router.get("", response_model=list[OrganizationOut], summary="List organizations")
def list_orgs(
    request: Request, principal: Principal = Depends(principal_from)
) -> list[OrganizationOut]:
    with context(request).store.transaction() as session:
        return [OrganizationOut.of(o) for o in organizations.list_organizations(session, principal)]
