"""The function workers' activities: a scheduled run (a failure is reported to the
function's webhook, retried, and to the audit trail), and applying the functions of an app's
shipway.yml when its production release goes live."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from shipway.accounts.roles import SYSTEM_ACTOR, Principal, Role
from shipway.apps.secretbox import SecretBox
from shipway.apps.service import PRODUCTION
from shipway.builder import appfile
from shipway.deploys.lifecycle import DeploymentStatus
from shipway.errors import ShipwayError
from shipway.events import Event, emit
from shipway.functions import commands
from shipway.functions import manifest as manifests
from shipway.functions.declared import Declared
from shipway.functions.invoke import Invoker
from shipway.functions.outcome import RunStatus
from shipway.functions.workflow import APPLY_ACTIVITY, RUN_ACTIVITY, RunReport, ScheduledRun
from shipway.releases.layers import LayerStore
from shipway.releases.manifest import Manifest
from shipway.store import Store
from shipway.store.tables import Deployment, Environment, Function, Release

log = logging.getLogger(__name__)

#: Attempts to deliver a failure to the webhook, with a doubling pause from the first.
WEBHOOK_ATTEMPTS = 4
WEBHOOK_FIRST_PAUSE = 1.0


class FunctionActivities:
    def __init__(self, invoker: Invoker, store: Store, data_dir: Path) -> None:
        self.invoker = invoker
        self.store = store
        self.data_dir = data_dir

    @activity.defn(name=RUN_ACTIVITY)
    async def run(self, spec: ScheduledRun) -> RunReport:
        ran = await self.invoker.invoke(
            spec.organization_id,
            spec.function,
            spec.params if spec.params is not None else {},
            trigger=f"schedule:{spec.trigger}",
        )
        outcome = ran.outcome
        message = (outcome.error or {}).get("message")
        report = RunReport(ran.run_id, outcome.status.value, message)
        if outcome.status is not RunStatus.SUCCEEDED:
            url = await asyncio.to_thread(self._record_failure, spec, report)
            if url:
                await deliver(url, _payload(spec, report))
        return report

    @activity.defn(name=APPLY_ACTIVITY)
    async def apply_release(self, deployment_id: int) -> list[str]:
        """Make the app's functions those its live production release declares (none if it
        has no shipway.yml); the changes, for people. A preview changes nothing."""
        found = await asyncio.to_thread(self._release, deployment_id)
        if found is None:
            return []
        organization_id, app, source = found
        box = SecretBox.load(self.data_dir)
        system = Principal(organization_id, Role.DEPLOYER, SYSTEM_ACTOR)

        def read() -> list[Declared]:
            return list(appfile.read(source).functions) if source is not None else []

        def apply(declared: list[Declared]) -> list[manifests.Change]:
            manifests.check(declared)
            with self.store.transaction() as session:
                return manifests.apply(session, system, f"app:{app}", declared, box)

        try:
            declared = await asyncio.to_thread(read)
            changes = await asyncio.to_thread(apply, declared)
        except ShipwayError as e:  # a function another manifest declares, say
            await asyncio.to_thread(self._record_refusal, organization_id, app, e)
            raise ApplicationError(e.message, non_retryable=True) from e
        await commands.publish(changes, organization_id, self.invoker.registry, activity.client())
        return [f"{c.function} {c.action}" for c in changes if c.action != "unchanged"]

    def _record_refusal(self, organization_id: int, app: str, error: ShipwayError) -> None:
        with self.store.transaction() as session:
            emit(
                session,
                Event(
                    organization_id,
                    SYSTEM_ACTOR,
                    "function.apply.failed",
                    f"app:{app}",
                    {"manifest": f"app:{app}", "message": error.message},
                ),
            )

    def _release(self, deployment_id: int) -> tuple[int, str, Path | None] | None:
        """The organization, app and source (the app layer) of a live production deployment;
        None for any other."""
        with self.store.transaction() as session:
            deployment = session.get(Deployment, deployment_id)
            if deployment is None or deployment.status != DeploymentStatus.LIVE.value:
                return None
            environment = session.get(Environment, deployment.environment_id)
            release = session.get(Release, deployment.release_id)
            if environment is None or environment.kind != PRODUCTION or release is None:
                return None
            organization_id, app = environment.app.organization_id, environment.app.name
            manifest = Manifest.from_json(release.manifest)
        layers = LayerStore(self.data_dir / "layers")
        source = [layers.path(ref.digest) for ref in manifest.layers if ref.role == "app"]
        return organization_id, app, source[0] if source else None

    def _record_failure(self, spec: ScheduledRun, report: RunReport) -> str | None:
        """An audit entry for the failed run; returns the function's webhook URL, if any."""
        with self.store.transaction() as session:
            fn = session.scalar(
                select(Function).where(
                    Function.organization_id == spec.organization_id,
                    Function.name == spec.function,
                )
            )
            emit(
                session,
                Event(
                    spec.organization_id,
                    SYSTEM_ACTOR,
                    "function.run.failed",
                    f"function:{spec.function}",
                    {
                        "run": report.run_id,
                        "status": report.status,
                        "trigger": spec.trigger,
                        "message": report.message,
                    },
                ),
            )
            return fn.webhook_url if fn is not None else None


def _payload(spec: ScheduledRun, report: RunReport) -> dict[str, Any]:
    return {
        "event": "function.run.failed",
        "function": spec.function,
        "trigger": spec.trigger,
        "params": spec.params,
        "run": {"id": report.run_id, "status": report.status, "message": report.message},
    }


async def deliver(url: str, payload: dict[str, Any]) -> bool:
    """POST PAYLOAD to URL, retrying on errors and 5xx; True once it was accepted."""
    pause = WEBHOOK_FIRST_PAUSE
    async with httpx.AsyncClient(timeout=10) as client:
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                response = await client.post(url, json=payload)
                if response.status_code < 500:
                    return response.status_code < 400
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                problem = str(e) or type(e).__name__
            log.warning("webhook %s, attempt %d: %s", url, attempt, problem)
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(pause)
                pause *= 2
    return False
