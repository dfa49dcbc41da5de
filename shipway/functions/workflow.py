"""FunctionRunWorkflow: what a function's schedule starts. The run itself is an activity on
the function workers' queue, so a schedule only plans and a worker only runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

#: The task queue of the function workers.
FUNCTIONS_QUEUE = "shipway-functions"
RUN_ACTIVITY = "shipway.functions.run"
#: Makes an app's functions those of the release a deployment made live.
APPLY_ACTIVITY = "shipway.functions.apply_release"


@dataclass
class ScheduledRun:
    organization_id: int
    function: str
    trigger: str
    params: Any = None


@dataclass
class RunReport:
    run_id: int
    status: str
    message: str | None = None


@workflow.defn(name="shipway.FunctionRun")
class FunctionRunWorkflow:
    @workflow.run
    async def run(self, spec: ScheduledRun) -> RunReport:
        # One attempt: a run is recorded as it ends, and a failed one is reported, not redone.
        report: RunReport = await workflow.execute_activity(
            RUN_ACTIVITY,
            spec,
            result_type=RunReport,
            task_queue=FUNCTIONS_QUEUE,
            start_to_close_timeout=timedelta(minutes=20),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
        return report


def schedule_id(organization_id: int, function: str, trigger: str) -> str:
    return f"fn/{organization_id}/{function}/{trigger}"
