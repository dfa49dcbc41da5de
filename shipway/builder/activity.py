"""The build activity: what a builder runs for each task it pulls from its pool's queue."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from enum import Enum
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from shipway import tracing
from shipway.builder.messages import BUILD_ACTIVITY, FAILURE_TYPE, BuildInput, BuildOutput
from shipway.builder.pipeline import BuildFailed, BuildRequest, BuildResult, build
from shipway.builder.records import BuildRecords
from shipway.builder.records.local import LocalRecords
from shipway.deploys.lifecycle import BuildStatus, is_terminal
from shipway.fleet import affinity
from shipway.fleet.slots import SharedSlots
from shipway.logs import LogWriter
from shipway.sandbox import Limits
from shipway.store import Store

HEARTBEAT_EVERY = 1.0

#: Told a deployment's build output once it succeeded (see BuilderActivities); whether it
#: recorded the release.
Built = Callable[[int, BuildOutput], Awaitable[bool]]


class Stopped(Enum):
    """Why a build was stopped from outside while it ran."""

    #: The store says it ended: a newer push superseded it, or it was cancelled.
    ENDED = "ended"
    #: Another attempt holds it: this builder was thought lost.
    TAKEN = "taken"


def builder_name(pid: int | None = None) -> str:
    """A builder's name: its machine and process (this one's by default)."""
    return f"{socket.gethostname()}/{os.getpid() if pid is None else pid}"


class BuilderActivities:
    """Builds on this machine, writing layers to DATA and logs to NATS and the store."""

    def __init__(
        self,
        records: Store | BuildRecords,
        data_dir: Path,
        js: Any,
        name: str | None = None,
        *,
        slots: SharedSlots | None = None,
        own_queue: str | None = None,
        on_built: Built | None = None,
    ) -> None:
        """RECORDS: the store (a builder beside the control plane) or what stands for it.
        ON_BUILT: what the process does with a build's output as soon as it succeeded, before
        Temporal hears of it (inside `shipway up`: record its release).
        SLOTS: the builder's, which a build from OWN_QUEUE (sent here for the warm cache)
        claims; a pool build comes with its slot."""
        self.records = LocalRecords(records, data_dir) if isinstance(records, Store) else records
        self.data_dir = data_dir
        self.js = js
        self.name = name or builder_name()
        self.slots = slots
        self.own_queue = own_queue
        self.on_built = on_built
        #: Builds running now.
        self.running = 0

    @activity.defn(name=BUILD_ACTIVITY)
    async def build(self, task: BuildInput) -> BuildOutput:
        claimed = self.slots is not None and activity.info().task_queue == self.own_queue
        if claimed and not await self.slots.claim(affinity.WAIT):  # type: ignore[union-attr]
            raise ApplicationError(
                f"{self.name} has no free slot; the build goes to its pool", non_retryable=True
            )
        self.running += 1
        try:
            with tracing.span("build", self._traced(task)) as span:
                built = await self._build(task)
                if span is not None:
                    span.set_attribute("shipway.build.cache_warm", built.cache_warm)
                return built
        finally:
            self.running -= 1
            if claimed:
                self.slots.release()  # type: ignore[union-attr]

    def _traced(self, task: BuildInput) -> tracing.Attributes:
        """What the build's span says of it."""
        return {
            "shipway.app": task.app,
            "shipway.build.id": task.build_id,
            "shipway.deployment.id": task.deployment_id,
            "shipway.builder": self.name,
        }

    async def _build(self, task: BuildInput) -> BuildOutput:
        info = activity.info()
        attempt = f"{info.activity_id}.{info.attempt}"
        begun = await asyncio.to_thread(
            self.records.begin, task.build_id, task.deployment_id, attempt, self.name
        )
        if begun is None:
            raise ApplicationError(
                "the build was superseded before it started", type=FAILURE_TYPE, non_retryable=True
            )
        app_config = await asyncio.to_thread(self.records.config, task.app_id)
        secrets = app_config.secret_values()
        live = None if self.records.lines.relayed else self.js
        log = await LogWriter.open(
            self.records.lines, live, "build", task.build_id, secrets=secrets
        )
        if begun.previous is not None:
            await log.write(f"-----> Retrying the build on {self.name}: {begun.previous}")
        await log.write(f"-----> Building on {self.name}")
        request = BuildRequest(
            build_id=task.build_id,
            app_id=task.app_id,
            app=task.app,
            source=await asyncio.to_thread(self.records.source, task.build_id, task.source_path),
            source_sha=task.source_sha,
            network=task.network,
            limits=Limits(wall_seconds=task.wall_seconds),
            config=app_config,
            organization_id=task.organization_id,
        )
        work = asyncio.create_task(self._build_and_publish(request, log))
        watch = asyncio.create_task(self._watch(task.build_id, attempt, work, log))
        try:
            result = await asyncio.shield(work)
        except BuildFailed as e:
            await self._held(task.build_id, attempt, log)
            await log.write(f"-----> Build failed: {e.message}")
            await log.close("failed")
            # The message becomes the deployment's reason: masked as the log is.
            said = log.masker.mask(e.message)
            raise ApplicationError(said, type=FAILURE_TYPE, non_retryable=True) from None
        except asyncio.CancelledError:
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            status = await self._held(task.build_id, attempt, log)
            await log.close(status)
            if watch.done() and not watch.cancelled() and watch.result() is Stopped.ENDED:
                raise ApplicationError(
                    f"the build was {status}", type=FAILURE_TYPE, non_retryable=True
                ) from None
            raise
        except Exception as e:
            await log.write(f"-----> The build stopped: {e}")
            if not log.masker:
                raise
            # Temporal keeps the message (and its causes) as the failure: masked, as the log is.
            raise ApplicationError(log.masker.mask(str(e)), type=type(e).__name__) from None
        finally:
            watch.cancel()
        await self._held(task.build_id, attempt, log)
        await log.write(f"-----> Build succeeded ({sum(result.steps.values()):.2f}s)")
        await log.close("succeeded")
        output = BuildOutput(
            manifest=result.manifest.to_json(),
            cache_warm=result.cache_warm,
            builder=self.name,
            steps=result.steps,
        )
        if self.on_built is not None:
            output.recorded = await self.on_built(task.deployment_id, output)
        return output

    async def _build_and_publish(self, request: BuildRequest, log: LogWriter) -> BuildResult:
        """Build, then put the release's layers, or its image, where releases run (sent over
        HTTP by a builder on another machine), all while the build heartbeats."""
        result = await build(request, self.data_dir, log.write)
        digests = [layer.digest for layer in result.manifest.layers]
        with tracing.span("build.publish"):
            await asyncio.to_thread(self.records.publish, digests, self.data_dir / "layers")
            if result.manifest.image is not None:
                await asyncio.to_thread(
                    self.records.publish_image, result.manifest.image, self.data_dir
                )
        return result

    async def _held(self, build_id: int, attempt: str, log: LogWriter) -> str:
        """The build's status, before saying how it ended; if another attempt holds it, say
        nothing and stand down."""
        status, holder = await asyncio.to_thread(self.records.standing, build_id)
        if holder != attempt:
            log.abandon()
            raise ApplicationError("another builder has taken the build over", non_retryable=True)
        return status

    async def _watch(
        self, build_id: int, attempt: str, work: asyncio.Task[Any], log: LogWriter
    ) -> Stopped | None:
        """Heartbeat to Temporal while WORK runs. Stop it, and say why, once the store shows
        the build ended (a newer push superseded it) or another attempt holds it (this
        builder was thought lost: stopped or cut off past the heartbeat timeout)."""
        while not work.done():
            activity.heartbeat()
            status, holder = await asyncio.to_thread(self.records.standing, build_id)
            if holder != attempt:
                log.abandon()
                work.cancel()
                return Stopped.TAKEN
            if is_terminal(BuildStatus(status)):
                work.cancel()
                return Stopped.ENDED
            await asyncio.sleep(HEARTBEAT_EVERY)
        return None
