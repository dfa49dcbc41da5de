"""/api/v1/apps/{name}/env: list and change an app's config vars; secrets are never shown."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Depends, Request

from shipway.accounts.roles import Principal
from shipway.api.auth import principal_from, services
from shipway.api.schemas import ConfigChange, ConfigVarOut
from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.store.tables import ConfigVar

router = APIRouter(prefix="/apps/{name}/env", tags=["config"])


def _listing(rows: Iterable[ConfigVar]) -> list[ConfigVarOut]:
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
    with services(request).store.transaction() as session:
        return _listing(config.list_vars(session, principal, name))


@router.patch("", response_model=list[ConfigVarOut], summary="Set and unset config vars")
def change_env(
    name: str, body: ConfigChange, request: Request, principal: Principal = Depends(principal_from)
) -> list[ConfigVarOut]:
    box = SecretBox.load(services(request).settings.data_dir)
    with services(request).store.transaction() as session:
        change = config.change(
            session,
            principal,
            name,
            values=body.set,
            unset=body.unset,
            secret=body.secret,
            box=box,
        )
        listing = _listing(change.vars)
    # The change is committed: this is where it is released and deployed.
    return listing
