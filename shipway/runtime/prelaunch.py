"""Start a release as soon as its deployment is recorded deploying, ahead of the workflow.

The control plane publishes each change of a deployment on NATS (shipway.eventbus) once it is
committed. The deploy workflow asks the node to go live one trip through Temporal after it
recorded the release (15-30 ms on one machine); the node hears the `deploying` event sooner
and begins the start then (`Runtime.prelaunch`), which the workflow's activity takes over
(`Runtime.launch`). The store stays the truth: a release with a release phase still waits for
the workflow, and what no activity takes over is stopped once the deployment is no longer
deploying (a replaced workflow never asks). One node runs every release (the node queue is
one); a node among several would begin only what is placed on it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from shipway import eventbus, tracing
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.links import NatsLink
from shipway.runtime.agent import Runtime

log = logging.getLogger(__name__)

#: Where the control plane says that a deployment's release is recorded: events.deployment.ID.…
DEPLOYING = eventbus.subject("deployment", "*", f"deployment.{DeploymentStatus.DEPLOYING}")


class Prelaunch:
    """Follows deployments going to deploying, for the life of a node."""

    def __init__(self, runtime: Runtime, link: NatsLink) -> None:
        self.runtime = runtime
        self.link = link
        self._watching: set[asyncio.Task[None]] = set()
        self._subscription: Any = None

    async def start(self) -> None:
        self._subscription = await self.link.nc.subscribe(DEPLOYING, cb=self._heard)

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        for task in list(self._watching):
            task.cancel()
        await asyncio.gather(*self._watching, return_exceptions=True)

    async def _heard(self, message: Any) -> None:
        deployment_id = deployment_of(message.subject)
        parent = tracing.extract(message.headers or {})
        if deployment_id is None or not self.runtime.prelaunch(deployment_id, parent):
            return
        watch = asyncio.ensure_future(self._watch(deployment_id))
        self._watching.add(watch)
        watch.add_done_callback(self._watching.discard)

    async def _watch(self, deployment_id: int) -> None:
        """Once the deployment is no longer deploying, stop what no activity took over."""

        async def ended() -> bool | None:
            return not await asyncio.to_thread(self.runtime.deploying, deployment_id) or None

        on = eventbus.subject("deployment", deployment_id)
        try:
            await eventbus.until(self.link, on, ended, math.inf)
            await self.runtime.forget_early(deployment_id)
        except Exception:  # the start it watches is the runtime's; it stops with the node
            log.exception("deployment %d: cannot watch its early start", deployment_id)


def deployment_of(subject: str) -> int | None:
    """The deployment an event's SUBJECT is about (events.deployment.ID.ACTION)."""
    parts = subject.split(".")
    if len(parts) < 3 or not parts[2].isdigit():
        return None
    return int(parts[2])
