"""Previews: an environment of its own for each branch or pull request, removed with it.

Removing one supersedes its deployments under way and deletes it from the store, then stops
its instances on the node: once the change is committed, so a failure to reach the node
leaves no environment that still claims to be there.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from sqlalchemy.orm import Session

from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.deploys.service import supersede
from shipway.store import Store


class Runtime(Protocol):
    """What a preview's removal asks of the node that runs its instances."""

    async def remove(self, app_id: int, environment: str | None = None) -> Any: ...


async def remove(
    store: Store, runtime: Runtime | None, principal: Principal, app: str, environment: str
) -> None:
    """Remove APP's preview ENVIRONMENT; NotFound if it has none of that name, ValidationError
    for production (delete the app instead)."""

    def recorded() -> int:
        with store.transaction() as session:
            return forget(session, principal, app, environment)

    app_id = await asyncio.to_thread(recorded)
    if runtime is not None:
        await runtime.remove(app_id, environment)


def forget(session: Session, principal: Principal, app: str, environment: str) -> int:
    """Remove APP's preview ENVIRONMENT from the store, superseding its deployments under way;
    its app's id."""
    principal.require(Role.DEPLOYER)
    env = apps.preview(session, principal, app, environment)
    supersede(session, principal.actor, env)
    app_id = env.app_id
    apps.delete_environment(session, principal, env)
    return app_id
