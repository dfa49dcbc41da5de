"""The deploy workflow's local steps: record the release and the outcome, one transaction each."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session
from temporalio import activity

from shipway import tracing
from shipway.addons import service as addon_service
from shipway.addons.servers import Servers
from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.builder.messages import BuildOutput
from shipway.deploys import service
from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus, is_terminal
from shipway.deploys.workflow import Outcome
from shipway.errors import ShipwayError
from shipway.releases.manifest import Manifest
from shipway.sandbox import expect_sandboxes
from shipway.store import Store
from shipway.store.tables import Build, Deployment, Release

log = logging.getLogger(__name__)


class DeployActivities:
    def __init__(self, store: Store, addons: Servers | None = None) -> None:
        self.store = store
        self.addons = addons

    @activity.defn(name="shipway.deploy.release")
    async def release(self, outcome: Outcome) -> Outcome:
        """Record the built release (if a build made one) and move the deployment to deploying,
        once the environment's add-ons are there (a preview's own made) and their servers up.

        Its instances start next: where a node runs on this machine, the wait of their cgroup
        joins passes meanwhile (see shipway.sandbox.joins). A release its builder recorded
        already (`record_built`) is only confirmed."""
        if outcome.build is not None and outcome.build.recorded:
            return await asyncio.to_thread(self._release, outcome)
        expect_sandboxes()
        if self.addons is not None:
            try:
                await addon_service.prepare(
                    self.store,
                    self.addons,
                    SecretBox.load(self.addons.data_dir),
                    outcome.deployment_id,
                )
            except ShipwayError as e:
                failed = Outcome(
                    outcome.deployment_id, DeploymentStatus.FAILED, f"add-ons: {e.message}"
                )
                return await asyncio.to_thread(self._finish, failed)
        return await asyncio.to_thread(self._release, outcome)

    async def record_built(self, deployment_id: int, built: BuildOutput) -> bool:
        """Record the release of a build that just succeeded on the builder in this process,
        as `release` does, rather than one trip through Temporal later: its node hears of it
        sooner (shipway.runtime.prelaunch). Whether the deployment is deploying it now: the
        workflow's own step then only confirms it. A failure here is left to that step, so
        it is only logged."""
        try:
            with tracing.span("release.record", {"shipway.deployment.id": deployment_id}):
                recorded = await self.release(
                    Outcome(deployment_id, DeploymentStatus.DEPLOYING, None, built)
                )
        except Exception:
            log.exception("deployment %d: the release is left to the workflow", deployment_id)
            return False
        return recorded.status is DeploymentStatus.DEPLOYING

    @activity.defn(name="shipway.deploy.finish")
    async def finish(self, outcome: Outcome) -> Outcome:
        return await asyncio.to_thread(self._finish, outcome)

    def _release(self, outcome: Outcome) -> Outcome:
        with self.store.transaction() as session:
            deployment = session.get(Deployment, outcome.deployment_id)
            if deployment is None:
                return Outcome(
                    outcome.deployment_id, DeploymentStatus.FAILED, "the deployment was deleted"
                )
            if is_terminal(DeploymentStatus(deployment.status)):
                return Outcome(
                    outcome.deployment_id, DeploymentStatus(deployment.status), deployment.reason
                )
            if outcome.build is not None and deployment.release_id is None:
                _record_release(session, deployment, outcome)
            if deployment.status == DeploymentStatus.QUEUED.value and deployment.build_id:
                service.move_deployment(session, deployment, DeploymentStatus.BUILDING)
            if deployment.status != DeploymentStatus.DEPLOYING.value:  # not recorded already
                service.move_deployment(session, deployment, DeploymentStatus.DEPLOYING)
            return Outcome(
                outcome.deployment_id, DeploymentStatus(deployment.status), deployment.reason
            )

    def _finish(self, outcome: Outcome) -> Outcome:
        with self.store.transaction() as session:
            deployment = session.get(Deployment, outcome.deployment_id)
            if deployment is None:
                return outcome
            target = outcome.status
            if target is DeploymentStatus.LIVE and deployment.status == DeploymentStatus.DEPLOYING:
                for previous in session.query(Deployment).filter(
                    Deployment.environment_id == deployment.environment_id,
                    Deployment.status == DeploymentStatus.LIVE.value,
                ):
                    service.move_deployment(session, previous, DeploymentStatus.RETIRED)
            service.move_deployment(session, deployment, target, outcome.reason)
            return Outcome(
                outcome.deployment_id, DeploymentStatus(deployment.status), deployment.reason
            )


def _record_release(session: Session, deployment: Deployment, outcome: Outcome) -> None:
    """The release a build made: its layers, with the app's config as it is now."""
    assert outcome.build is not None
    built = outcome.build
    manifest = Manifest.from_json(built.manifest)
    build = session.get(Build, deployment.build_id)
    assert build is not None
    sha = deployment.commit_sha
    release = Release(
        app_id=deployment.app_id,
        build_id=build.id,
        version=service.next_release_version(session, deployment.app_id),
        digest=manifest.digest,
        manifest=manifest.to_json(),
        config=config.snapshot(session, deployment.app_id),
        description=f"Deploy {sha[:7]}" if sha else "Deploy an upload",
    )
    session.add(release)
    session.flush()
    build.builder = built.builder
    build.cache_warm = built.cache_warm
    build.stack = manifest.stack
    build.steps = built.steps
    service.move_build(session, build, BuildStatus.SUCCEEDED)
    deployment.release_id = release.id
