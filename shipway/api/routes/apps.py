"""/api/v1/apps: create, list, get and delete a tenant's apps."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from shipway.accounts.roles import Principal
from shipway.api.auth import principal_from, services
from shipway.api.schemas import AppCreate, AppOut, AppUpdate
from shipway.apps import service

router = APIRouter(prefix="/apps", tags=["apps"])


def _app_url(request: Request) -> str:
    settings = services(request).settings
    return f"http://{{host}}.{settings.base_domain}:{settings.port}"


@router.post("", status_code=201, response_model=AppOut, summary="Create an app")
def create_app(
    body: AppCreate, request: Request, principal: Principal = Depends(principal_from)
) -> AppOut:
    with services(request).store.transaction() as session:
        app = service.create(session, principal, body.name, plan=body.plan, region=body.region)
        return AppOut.of(app, _app_url(request))


@router.get("", response_model=list[AppOut], summary="List the tenant's apps")
def list_apps(request: Request, principal: Principal = Depends(principal_from)) -> list[AppOut]:
    with services(request).store.transaction() as session:
        return [AppOut.of(a, _app_url(request)) for a in service.list_apps(session, principal)]


@router.get("/{name}", response_model=AppOut, summary="Get one app")
def get_app(name: str, request: Request, principal: Principal = Depends(principal_from)) -> AppOut:
    with services(request).store.transaction() as session:
        return AppOut.of(service.get(session, principal, name), _app_url(request))


@router.patch("/{name}", response_model=AppOut, summary="Change an app's settings")
def update_app(
    name: str, body: AppUpdate, request: Request, principal: Principal = Depends(principal_from)
) -> AppOut:
    with services(request).store.transaction() as session:
        app = service.update(
            session, principal, name, plan=body.plan, build_network=body.build_network
        )
        return AppOut.of(app, _app_url(request))


@router.delete("/{name}", status_code=204, summary="Delete an app and all it owns")
def delete_app(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    with services(request).store.transaction() as session:
        service.delete(session, principal, name)
    return Response(status_code=204)
