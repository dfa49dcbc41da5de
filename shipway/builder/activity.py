"""The build activity: what a builder runs for each task it pulls from its pool's queue."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.builder.messages import BUILD_ACTIVITY, FAILURE_TYPE, BuildInput, BuildOutput
from shipway.builder.pipeline import BuildFailed, BuildRequest, build
from shipway.deploys import service
from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus, is_terminal
from shipway.logs import LogWriter
from shipway.sandbox import Limits
from shipway.store import Store
from shipway.store.tables import Build, Deployment

HEARTBEAT_EVERY = 1.0


def builder_name() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


class BuilderActivities:
    """Builds on this machine, writing layers to DATA and logs to NATS and the store."""

    def __init__(self, store: Store, data_dir: Path, js: Any, name: str | None = None) -> None:
        self.store = store
        self.data_dir = data_dir
        self.js = js
        self.name = name or builder_name()
        #: Builds running now.
        self.running = 0

    @activity.defn(name=BUILD_ACTIVITY)
    async def build(self, task: BuildInput) -> BuildOutput:
        self.running += 1
        try:
            return await self._build(task)
        finally:
            self.running -= 1

    async def _build(self, task: BuildInput) -> BuildOutput:
        if not await asyncio.to_thread(self._begin, task):
            raise ApplicationError(
                "the build was superseded before it started", type=FAILURE_TYPE, non_retryable=True
            )
        secrets = await asyncio.to_thread(self._secrets, task.app_id)
        log = await LogWriter.open(self.store, self.js, "build", task.build_id, secrets=secrets)
        attempt = activity.info().attempt
        if attempt > 1:
            await log.write(
                f"-----> Retrying the build (attempt {attempt}): the builder of the "
                "previous attempt stopped before finishing"
            )
        await log.write(f"-----> Building on {self.name}")
        request = BuildRequest(
            build_id=task.build_id,
            app_id=task.app_id,
            app=task.app,
            source=Path(task.source_path),
            source_sha=task.source_sha,
            network=task.network,
            limits=Limits(wall_seconds=task.wall_seconds),
        )
        work = asyncio.create_task(build(request, self.data_dir, log.write))
        beat = asyncio.create_task(self._heartbeat(task.build_id, work))
        try:
            result = await asyncio.shield(work)
        except BuildFailed as e:
            await log.write(f"-----> Build failed: {e.message}")
            await log.close("failed")
            raise ApplicationError(e.message, type=FAILURE_TYPE, non_retryable=True) from e
        except asyncio.CancelledError:
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            status = await asyncio.to_thread(self._final_status, task.build_id)
            await log.close(status)
            if beat.done() and not beat.cancelled() and beat.result():
                raise ApplicationError(
                    f"the build was {status}", type=FAILURE_TYPE, non_retryable=True
                ) from None
            raise
        finally:
            beat.cancel()
        await log.write(f"-----> Build succeeded ({sum(result.steps.values()):.2f}s)")
        await log.close("succeeded")
        return BuildOutput(
            manifest=result.manifest.to_json(),
            cache_warm=result.cache_warm,
            builder=self.name,
            steps=result.steps,
        )

    def _begin(self, task: BuildInput) -> bool:
        with self.store.transaction() as session:
            build_row = session.get(Build, task.build_id)
            deployment = session.get(Deployment, task.deployment_id)
            if build_row is None or deployment is None:
                return False
            build_row.builder = self.name
            if build_row.status == BuildStatus.BUILDING.value:
                return True  # a retry of an attempt whose builder died
            if deployment.status == DeploymentStatus.QUEUED.value:
                return service.move_deployment(
                    session, deployment, DeploymentStatus.BUILDING
                ) and service.move_build(session, build_row, BuildStatus.BUILDING)
            return False

    def _secrets(self, app_id: int) -> list[str]:
        """The app's secret values, masked wherever the build prints them."""
        with self.store.transaction() as session:
            snapshot = config.snapshot(session, app_id)
        return config.secret_values(snapshot, SecretBox.load(self.data_dir))

    def _final_status(self, build_id: int) -> str:
        with self.store.transaction() as session:
            row = session.get(Build, build_id)
            return row.status if row is not None else "cancelled"

    async def _heartbeat(self, build_id: int, work: asyncio.Task[Any]) -> bool:
        """Heartbeat to Temporal; stop the build, and say so, once the store shows it ended
        (a newer push superseded it)."""
        while not work.done():
            activity.heartbeat()
            status = await asyncio.to_thread(self._final_status, build_id)
            if is_terminal(BuildStatus(status)):
                work.cancel()
                return True
            await asyncio.sleep(HEARTBEAT_EVERY)
        return False
