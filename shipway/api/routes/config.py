"""/api/v1/apps/{name}/env: list and change an app's config vars; secrets are never shown."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from fastapi import APIRouter, Depends, Request, Response

from shipway.accounts.roles import Principal
from shipway.api.auth import context, principal_from
from shipway.api.routing import Route
from shipway.api.schemas import ConfigChange, ConfigVarOut
from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.client.upload import DEPLOYMENT_HEADER as DEPLOYMENT_HEADER  # re-exported
from shipway.deploys import launch
from shipway.deploys import service as deploys
from shipway.store.tables import ConfigVar, Deployment

router = APIRouter(prefix="/apps/{name}/env", tags=["config"], route_class=Route)


def listing(rows: Iterable[ConfigVar]) -> list[ConfigVarOut]:
    """Config vars as the API shows them: a secret's value as ***."""
    return [
        ConfigVarOut(
            key=var.key,
            value=config.HIDDEN if var.secret else var.value,
            secret=var.secret,
            updated_at=var.updated_at,
        )
        for var in rows
    ]


@router.get("", response_model=list[ConfigVarOut], summary="List an app's config vars")
def list_env(
    name: str, request: Request, principal: Principal = Depends(principal_from)
) -> list[ConfigVarOut]:
    with context(request).store.transaction() as session:
        return listing(config.list_vars(session, principal, name))


@router.patch("", response_model=list[ConfigVarOut], summary="Set and unset config vars")
async def change_env(
    name: str,
    body: ConfigChange,
    request: Request,
    response: Response,
    principal: Principal = Depends(principal_from),
) -> list[ConfigVarOut]:
    """A change that sets or unsets anything makes a new release of the live production code
    and deploys it; the `X-Shipway-Deployment` header then names that deployment."""
    store = context(request).store
    box = SecretBox.load(context(request).settings.data_dir)

    def change() -> tuple[list[ConfigVarOut], Deployment | None]:
        with store.transaction() as session:
            done = config.change(
                session,
                principal,
                name,
                values=body.set,
                unset=body.unset,
                secret=body.secret,
                box=box,
            )
            deployment = None
            if done.changed:
                snapshot = config.snapshot(session, done.app.id)
                deployment = deploys.release_config(
                    session, principal.actor, done.app, snapshot, config.describe(done)
                )
            return listing(done.vars), deployment

    shown, deployment = await asyncio.to_thread(change)
    if deployment is not None:
        await launch.deploy_release(store, context(request).temporal, deployment)
        response.headers[DEPLOYMENT_HEADER] = str(deployment.id)
    return shown
