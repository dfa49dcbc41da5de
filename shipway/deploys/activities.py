"""The deploy workflow's local steps: record the outcome in the store, in one transaction."""

from __future__ import annotations

import asyncio

from temporalio import activity

from shipway.deploys import service
from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus
from shipway.deploys.workflow import Outcome
from shipway.releases.manifest import Manifest
from shipway.store import Store
from shipway.store.tables import App, Build, Deployment, Release


class DeployActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name="shipway.deploy.finish")
    async def finish(self, outcome: Outcome) -> Outcome:
        return await asyncio.to_thread(self._finish, outcome)

    def _finish(self, outcome: Outcome) -> Outcome:
        with self.store.transaction() as session:
            deployment = session.get(Deployment, outcome.deployment_id)
            if deployment is None:
                return outcome
            if outcome.status != "live" or outcome.build is None:
                service.move_deployment(
                    session, deployment, DeploymentStatus(outcome.status), outcome.reason
                )
                return Outcome(outcome.deployment_id, deployment.status, deployment.reason)
            if deployment.status in (s.value for s in service.ACTIVE):
                self._release(session, deployment, outcome)
            return Outcome(
                outcome.deployment_id, deployment.status, deployment.reason, outcome.build
            )

    def _release(self, session, deployment: Deployment, outcome: Outcome) -> None:  # type: ignore[no-untyped-def]
        assert outcome.build is not None
        built = outcome.build
        manifest = Manifest.from_json(built.manifest)
        build = session.get(Build, deployment.build_id)
        app = session.get(App, deployment.app_id)
        assert build is not None and app is not None
        release = Release(
            app_id=app.id,
            build_id=build.id,
            version=service.next_release_version(session, app.id),
            digest=manifest.digest,
            manifest=manifest.to_json(),
        )
        session.add(release)
        session.flush()
        build.builder = built.builder
        build.cache_warm = built.cache_warm
        build.stack = manifest.stack
        build.steps = built.steps
        service.move_build(session, build, BuildStatus.SUCCEEDED)
        deployment.release_id = release.id
        if deployment.status == DeploymentStatus.QUEUED.value:
            service.move_deployment(session, deployment, DeploymentStatus.BUILDING)
        if deployment.status == DeploymentStatus.BUILDING.value:
            service.move_deployment(session, deployment, DeploymentStatus.DEPLOYING)
        for previous in session.query(Deployment).filter(
            Deployment.environment_id == deployment.environment_id,
            Deployment.status == DeploymentStatus.LIVE.value,
        ):
            service.move_deployment(session, previous, DeploymentStatus.RETIRED)
        service.move_deployment(session, deployment, DeploymentStatus.LIVE)
