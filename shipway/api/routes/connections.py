"""/api/v1/apps/{app}/connection: connect an app to its repository on a git host, so the
host's webhooks deploy it; /api/v1/apps/{app}/deliveries: the webhook deliveries it got."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import ConnectionIn, ConnectionOut, DeliveryOut
from shipway.apps import service as apps
from shipway.apps.secretbox import SecretBox
from shipway.errors import NotFound
from shipway.webhooks import connections, verify

router = APIRouter(prefix="/apps/{app}", tags=["apps"], route_class=Route)


@router.put("/connection", response_model=ConnectionOut, summary="Connect a repository")
def connect(
    app: str, body: ConnectionIn, request: Request, principal: Principal = Depends(principal_from)
) -> ConnectionOut:
    """Store the webhook secret and the optional API token (both encrypted), replacing an
    earlier connection; the answer says which URL to give the host."""
    ctx = context(request)
    box = SecretBox.load(ctx.settings.data_dir)
    with ctx.store.transaction() as session:
        made = connections.connect(
            session,
            principal,
            box,
            app,
            provider=verify.provider(body.provider),
            repo=body.repo,
            secret=body.secret,
            token=body.token,
            api_url=body.api_url,
        )
        return ConnectionOut.of(made, app, str(request.base_url))


@router.get("/connection", response_model=ConnectionOut, summary="The connected repository")
def get_connection(
    app: str, request: Request, principal: Principal = Depends(principal_from)
) -> ConnectionOut:
    with context(request).store.transaction() as session:
        found = connections.of_app(session, principal, app)
        if found is None:
            raise NotFound(f"{app} is not connected to a repository", details={"app": app})
        return ConnectionOut.of(found, app, str(request.base_url))


@router.delete("/connection", status_code=204, summary="Disconnect the repository")
def disconnect(
    app: str, request: Request, principal: Principal = Depends(principal_from)
) -> Response:
    with context(request).store.transaction() as session:
        connections.disconnect(session, principal, app)
    return Response(status_code=204)


@router.get("/deliveries", response_model=list[DeliveryOut], summary="Webhook deliveries")
def list_deliveries(
    app: str,
    request: Request,
    limit: int = Query(default=20, ge=1, le=200),
    principal: Principal = Depends(principal_from),
) -> list[DeliveryOut]:
    """The app's latest deliveries, newest first: what each asked for and what came of it."""
    with context(request).store.transaction() as session:
        found = apps.get(session, principal, app)
        return [DeliveryOut.model_validate(d) for d in connections.recent(session, found.id, limit)]
