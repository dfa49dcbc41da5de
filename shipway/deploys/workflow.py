"""DeployWorkflow: orchestration only. The build runs on a builder, the release's instances on a
node; recording the outcome is a local step of the control plane."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from shipway.builder.messages import (
        BUILD_ACTIVITY,
        BuildInput,
        BuildOutput,
        builder_queue,
        own_queue,
    )
    from shipway.builder.messages import FAILURE_TYPE as BUILD_FAILED
    from shipway.deploys.lifecycle import DeploymentStatus
    from shipway.fleet import affinity
    from shipway.functions.workflow import APPLY_ACTIVITY, FUNCTIONS_QUEUE
    from shipway.releases.manifest import Manifest
    from shipway.runtime.messages import (
        DISCARD_ACTIVITY,
        GO_LIVE_ACTIVITY,
        NODE_QUEUE,
        RELEASE_ACTIVITY,
        ROUTE_ACTIVITY,
        START_ACTIVITY,
        RunInput,
    )
    from shipway.runtime.messages import FAILURE_TYPE as RELEASE_FAILED
    from shipway.settings import MAX_RELEASE_TIMEOUT


#: Deployments made live by workflows older than this apply no functions.
FUNCTIONS_PATCH = "functions-from-release"
#: Builds of workflows older than this go straight to their pool.
AFFINITY_PATCH = "build-affinity"
#: Deployments of workflows older than this run no release phase.
RELEASE_PATCH = "release-phase"
#: Workflows older than this start the release and route to it in two activities.
GO_LIVE_PATCH = "go-live-in-one"

T = TypeVar("T")


@dataclass
class DeployInput:
    deployment_id: int
    #: None when the deployment runs a release that exists already (a rollback, a config change).
    build: BuildInput | None = None
    pool: str = "default"
    #: The builder with the app's warm cache, tried first (see shipway.fleet.affinity).
    affinity: str | None = None
    #: A rollback's release is a copy of one whose release phase ran already: it runs none.
    rollback: bool = False
    #: Whether the existing release deployed has a `release:`, as its launch read it; None from
    #: workflows started before it was told, whose node reads the release itself.
    release_phase: bool | None = None


@dataclass
class Outcome:
    deployment_id: int
    status: DeploymentStatus
    reason: str | None = None
    build: BuildOutput | None = None


async def _record(step: str, outcome: Outcome) -> Outcome:
    """Record OUTCOME in the store: a local activity on the control-plane worker."""
    result: Outcome = await workflow.execute_local_activity(
        step,
        outcome,
        result_type=Outcome,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(milliseconds=200)),
    )
    return result


async def _go_live(task: RunInput) -> bool:
    """Start the release on the node and route to it; whether it went live. One activity
    since GO_LIVE_PATCH, which saves a trip through Temporal on every deploy."""
    if workflow.patched(GO_LIVE_PATCH):
        return await _start(GO_LIVE_ACTIVITY, task, bool)
    await _start(START_ACTIVITY, task, int)
    routed: bool = await workflow.execute_activity(
        ROUTE_ACTIVITY,
        task,
        result_type=bool,
        task_queue=NODE_QUEUE,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_attempts=3),
    )
    return routed


async def _start(name: str, task: RunInput, result_type: type[T]) -> T:
    result: T = await workflow.execute_activity(
        name,
        task,
        result_type=result_type,
        task_queue=NODE_QUEUE,
        start_to_close_timeout=timedelta(minutes=15),
        heartbeat_timeout=timedelta(seconds=10),
        retry_policy=RetryPolicy(
            maximum_attempts=2,
            initial_interval=timedelta(milliseconds=200),
            non_retryable_error_types=[RELEASE_FAILED],
        ),
    )
    return result


def failure_reason(error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)


@workflow.defn(name="shipway.Deploy")
class DeployWorkflow:
    """Build the pushed source (if any), record the release, start it, route to it."""

    @workflow.run
    async def run(self, spec: DeployInput) -> Outcome:
        built = None
        if spec.build is not None:
            try:
                built = await self._build(spec.build, spec.pool, spec.affinity)
            except ActivityError as e:
                failed = Outcome(spec.deployment_id, DeploymentStatus.FAILED, failure_reason(e))
                return await _record("shipway.deploy.finish", failed)
            except asyncio.CancelledError:
                await _record(
                    "shipway.deploy.finish",
                    Outcome(spec.deployment_id, DeploymentStatus.CANCELLED, "cancelled"),
                )
                raise
        released = await _record(
            "shipway.deploy.release",
            Outcome(spec.deployment_id, DeploymentStatus.DEPLOYING, None, built),
        )
        if released.status is not DeploymentStatus.DEPLOYING:
            return released
        task = RunInput(spec.deployment_id)
        try:
            if _may_have_release_phase(spec, built) and workflow.patched(RELEASE_PATCH):
                failure = await self._release_phase(task)
                if failure is not None:
                    return await _record(
                        "shipway.deploy.finish",
                        Outcome(spec.deployment_id, DeploymentStatus.FAILED, failure),
                    )
            routed = await _go_live(task)
        except ActivityError as e:
            return await _record(
                "shipway.deploy.finish",
                Outcome(spec.deployment_id, DeploymentStatus.FAILED, failure_reason(e)),
            )
        except asyncio.CancelledError:
            await workflow.execute_activity(
                DISCARD_ACTIVITY,
                task,
                task_queue=NODE_QUEUE,
                start_to_close_timeout=timedelta(seconds=30),
            )
            await _record(
                "shipway.deploy.finish",
                Outcome(spec.deployment_id, DeploymentStatus.CANCELLED, "cancelled"),
            )
            raise
        status = DeploymentStatus.LIVE if routed else DeploymentStatus.SUPERSEDED
        finished = await _record(
            "shipway.deploy.finish", Outcome(spec.deployment_id, status, None, built)
        )
        if finished.status is DeploymentStatus.LIVE and workflow.patched(FUNCTIONS_PATCH):
            await self._apply_functions(spec.deployment_id)
        return finished

    async def _release_phase(self, task: RunInput) -> str | None:
        """Run the release phase on the node, once (a failed migration is not tried again on
        its own); None when it succeeded or there was none, else why the deployment failed.
        The node kills it at its release timeout; this waits a little longer than the most
        that may be, and notices a lost node by its heartbeat."""
        try:
            await workflow.execute_activity(
                RELEASE_ACTIVITY,
                task,
                task_queue=NODE_QUEUE,
                start_to_close_timeout=timedelta(seconds=MAX_RELEASE_TIMEOUT + 60),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as e:
            if isinstance(e.cause, ApplicationError) and e.cause.type == RELEASE_FAILED:
                return e.cause.message
            return f"release phase did not finish: {failure_reason(e)}"
        return None

    async def _apply_functions(self, deployment_id: int) -> None:
        """Make the app's functions those of the release now live (its shipway.yml). The
        release is live either way: a failure is in the audit trail, not the deployment."""
        try:
            await workflow.execute_activity(
                APPLY_ACTIVITY,
                deployment_id,
                result_type=list[str],
                task_queue=FUNCTIONS_QUEUE,
                schedule_to_close_timeout=timedelta(minutes=5),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as e:
            workflow.logger.warning("deployment %d: functions not applied: %s", deployment_id, e)

    async def _build(self, build: BuildInput, pool: str, warm: str | None) -> BuildOutput:
        """On the builder with the warm cache if it takes the build within affinity.WAIT (one
        attempt: if it is lost mid-build the retry goes to the pool); else on any of POOL."""
        if warm is not None and workflow.patched(AFFINITY_PATCH):
            try:
                return await self._build_on(
                    own_queue(warm),
                    build,
                    attempts=1,
                    wait=timedelta(seconds=affinity.WAIT),
                )
            except ActivityError as e:
                if isinstance(e.cause, ApplicationError) and e.cause.type == BUILD_FAILED:
                    raise
                workflow.logger.info("build %d: not on %s: %s", build.build_id, warm, e)
        return await self._build_on(builder_queue(pool), build, attempts=3)

    async def _build_on(
        self, queue: str, build: BuildInput, *, attempts: int, wait: timedelta | None = None
    ) -> BuildOutput:
        result: BuildOutput = await workflow.execute_activity(
            BUILD_ACTIVITY,
            build,
            result_type=BuildOutput,
            task_queue=queue,
            schedule_to_start_timeout=wait,
            start_to_close_timeout=timedelta(seconds=build.wall_seconds + 120),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                maximum_attempts=attempts,
                initial_interval=timedelta(milliseconds=200),
                non_retryable_error_types=[BUILD_FAILED],
            ),
        )
        return result


def _may_have_release_phase(spec: DeployInput, built: BuildOutput | None) -> bool:
    """Whether to ask the node for a release phase: never for a rollback, and otherwise only
    when the release has a `release:` (a build's manifest says, or the launch of an existing
    release did); when nobody said, the node reads the release itself."""
    if spec.rollback:
        return False
    if built is not None:
        return Manifest.from_json(built.manifest).release_command is not None
    return spec.release_phase is not False
