"""DeployWorkflow: orchestration only. The build runs on a builder; the rest are local steps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from shipway.builder.messages import (
        BUILD_ACTIVITY,
        FAILURE_TYPE,
        BuildInput,
        BuildOutput,
        builder_queue,
    )


@dataclass
class DeployInput:
    deployment_id: int
    build: BuildInput
    pool: str = "default"


@dataclass
class Outcome:
    deployment_id: int
    status: str
    reason: str | None = None
    build: BuildOutput | None = None


async def _finish(outcome: Outcome) -> Outcome:
    """Record OUTCOME in the store: a local activity on the control-plane worker."""
    result: Outcome = await workflow.execute_local_activity(
        "shipway.deploy.finish",
        outcome,
        result_type=Outcome,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(milliseconds=200)),
    )
    return result


def _reason(error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or error)


@workflow.defn(name="shipway.Deploy")
class DeployWorkflow:
    """Build the pushed source, record the release and make it the environment's live one."""

    @workflow.run
    async def run(self, spec: DeployInput) -> Outcome:
        try:
            built = await workflow.execute_activity(
                BUILD_ACTIVITY,
                spec.build,
                result_type=BuildOutput,
                task_queue=builder_queue(spec.pool),
                start_to_close_timeout=timedelta(seconds=spec.build.wall_seconds + 120),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    maximum_attempts=3,
                    initial_interval=timedelta(milliseconds=200),
                    non_retryable_error_types=[FAILURE_TYPE],
                ),
            )
        except ActivityError as e:
            outcome = Outcome(spec.deployment_id, "failed", _reason(e))
            return await _finish(outcome)
        except asyncio.CancelledError:
            outcome = Outcome(spec.deployment_id, "cancelled", "cancelled")
            await _finish(outcome)
            raise
        outcome = Outcome(spec.deployment_id, "live", None, built)
        return await _finish(outcome)
