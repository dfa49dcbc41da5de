"""The runtime's side of a deploy: run the release phase, start the release's instances,
switch the route, or discard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from shipway.errors import ShipwayError
from shipway.runtime.agent import Runtime
from shipway.runtime.messages import (
    DISCARD_ACTIVITY,
    FAILURE_TYPE,
    GO_LIVE_ACTIVITY,
    RELEASE_ACTIVITY,
    ROUTE_ACTIVITY,
    START_ACTIVITY,
    RunInput,
)

HEARTBEAT_EVERY = 1.0

T = TypeVar("T")


class RuntimeActivities:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def all(self) -> list[Callable[..., Any]]:
        """Every activity a node's worker serves."""
        return [self.release, self.start, self.route, self.go_live, self.discard]

    @activity.defn(name=RELEASE_ACTIVITY)
    async def release(self, task: RunInput) -> float | None:
        """Run the release phase, if the release has one; the seconds it took."""
        return await self._while_deploying(
            task.deployment_id,
            self.runtime.release_phase(task.deployment_id),
            "a newer deployment replaced it during its release phase",
        )

    @activity.defn(name=START_ACTIVITY)
    async def start(self, task: RunInput) -> int:
        """Start the release and return its instance count once every one is healthy."""
        generation = await self._while_deploying(
            task.deployment_id,
            self.runtime.launch(task.deployment_id),
            "a newer deployment replaced it while it started",
        )
        return len(generation.instances)

    @activity.defn(name=ROUTE_ACTIVITY)
    async def route(self, task: RunInput) -> bool:
        """Switch the router to the started release, if its deployment is still the one to go
        live (a newer push may have superseded it meanwhile); else stop it."""
        if await asyncio.to_thread(self.runtime.deploying, task.deployment_id):
            return self.runtime.route(task.deployment_id)
        await self.runtime.discard(task.deployment_id)
        return False

    @activity.defn(name=GO_LIVE_ACTIVITY)
    async def go_live(self, task: RunInput) -> bool:
        """Start the release, then route to it: whether it went live (False when a newer
        deployment superseded it once it had started)."""
        await self.start(task)
        return await self.route(task)

    @activity.defn(name=DISCARD_ACTIVITY)
    async def discard(self, task: RunInput) -> None:
        await self.runtime.discard(task.deployment_id)

    async def _while_deploying(
        self, deployment_id: int, work: Coroutine[Any, Any, T], replaced: str
    ) -> T:
        """Do WORK for a deployment, heartbeating; stop it (and what it started) when a newer
        deployment replaces this one, failing with REPLACED. Its ShipwayErrors fail the
        activity for good: the same release would fail the same way again."""
        task = asyncio.create_task(work)
        beat = asyncio.create_task(self._heartbeat(deployment_id, task))
        try:
            return await asyncio.shield(task)
        except ShipwayError as e:
            raise ApplicationError(e.message, type=FAILURE_TYPE, non_retryable=True) from e
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            await self.runtime.discard(deployment_id)
            if beat.done() and not beat.cancelled() and beat.result():
                raise ApplicationError(replaced, type=FAILURE_TYPE, non_retryable=True) from None
            raise
        finally:
            beat.cancel()

    async def _heartbeat(self, deployment_id: int, work: asyncio.Task[Any]) -> bool:
        """Heartbeat; stop starting a deployment that a newer one has superseded (True)."""
        while not work.done():
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_EVERY)
            if not work.done() and not await asyncio.to_thread(
                self.runtime.deploying, deployment_id
            ):
                work.cancel()
                return True
        return False
