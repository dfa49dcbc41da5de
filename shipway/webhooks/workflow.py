"""HookWorkflow: what one verified delivery asks for, orchestration only. Each push or pull
request is fetched and launched, its commit status goes pending, and once its deployment ends
the status says how; a deleted branch or a closed pull request takes its preview away.

Reporting a status is retried with backoff and never decides the delivery's outcome: the
host being away does not fail a deployment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from shipway.deploys.workflow import failure_reason
    from shipway.webhooks.events import Kind
    from shipway.webhooks.lifecycle import DeliveryStatus
    from shipway.webhooks.status import State

LAUNCH_ACTIVITY = "shipway.hook.launch"
OUTCOME_ACTIVITY = "shipway.hook.outcome"
REPORT_ACTIVITY = "shipway.hook.report"
REMOVE_ACTIVITY = "shipway.hook.remove"
SETTLE_ACTIVITY = "shipway.hook.settle"

#: A status report is tried for about six minutes: 1 s, 2 s, 4 s … then each minute.
REPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
)
#: Fetching and launching again helps when the host or Temporal hiccups; a refusal does not.
LAUNCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_attempts=3, non_retryable_error_types=["Refused"]
)
#: A deployment may take the build timeout and its rollout; the wait outlasts both.
LONGEST_DEPLOYMENT = timedelta(hours=6)
#: The long steps heartbeat every 3 s (HEARTBEAT_SECONDS): one whose worker died (a crash, a
#: kill) is taken up again by another this long after its last beat.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)


@dataclass
class Work:
    """One thing a delivery asks for (an events.HookEvent that is acted on)."""

    kind: str
    branch: str | None = None
    sha: str | None = None
    number: int | None = None

    @property
    def what(self) -> str:
        if self.number is not None:
            return f"pull request #{self.number}"
        return self.branch or "?"


@dataclass
class HookInput:
    delivery: int
    app_id: int
    work: list[Work]


@dataclass
class LaunchInput:
    delivery: int
    app_id: int
    work: Work


@dataclass
class Launched:
    deployment_id: int
    environment: str
    url: str
    #: The full sha deployed (a delivery may name it abbreviated).
    sha: str
    #: What the fetch brought, for people.
    fetched: str = ""


@dataclass
class Ended:
    status: str
    reason: str | None = None


@dataclass
class Report:
    delivery: int
    app_id: int
    sha: str
    state: str
    description: str
    url: str | None = None


@dataclass
class Settle:
    delivery: int
    status: str
    detail: str
    #: Why a status could not be reported, if one could not.
    unreported: str | None = None


@workflow.defn(name="shipway.Hook")
class HookWorkflow:
    def __init__(self) -> None:
        self.unreported: str | None = None

    @workflow.run
    async def run(self, spec: HookInput) -> str:
        said: list[str] = []
        ok = True
        for work in spec.work:
            if work.kind in (Kind.PUSH, Kind.PULL_OPENED):
                done, line = await self._deploy(spec, work)
            else:
                done, line = await self._remove(spec, work)
            ok = ok and done
            said.append(line)
        detail = "; ".join(said)
        status = DeliveryStatus.DONE if ok else DeliveryStatus.FAILED
        await workflow.execute_activity(
            SETTLE_ACTIVITY,
            Settle(spec.delivery, status, detail, self.unreported),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5),
        )
        return detail

    async def _deploy(self, spec: HookInput, work: Work) -> tuple[bool, str]:
        assert work.sha is not None
        try:
            launched: Launched = await workflow.execute_activity(
                LAUNCH_ACTIVITY,
                LaunchInput(spec.delivery, spec.app_id, work),
                result_type=Launched,
                start_to_close_timeout=timedelta(minutes=15),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=LAUNCH_RETRY,
            )
        except ActivityError as e:
            reason = failure_reason(e)
            await self._report(spec, work.sha, State.FAILURE, f"not deployed: {reason}")
            return False, f"{work.what}: not deployed: {reason}"
        pending = workflow.start_activity(
            REPORT_ACTIVITY,
            Report(
                spec.delivery,
                spec.app_id,
                launched.sha,
                State.PENDING,
                f"deploying to {launched.environment}",
                launched.url,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REPORT_RETRY,
        )
        ended: Ended = await workflow.execute_activity(
            OUTCOME_ACTIVITY,
            launched.deployment_id,
            result_type=Ended,
            start_to_close_timeout=LONGEST_DEPLOYMENT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )
        try:
            await pending  # the final state must not land before the pending one
        except ActivityError as e:
            self.unreported = failure_reason(e)
        state, description = _final(ended, launched.environment)
        await self._report(spec, launched.sha, state, description, launched.url)
        line = f"{work.what}: deployment {launched.deployment_id} to {launched.environment}"
        return state is State.SUCCESS, f"{line} {ended.status} ({launched.fetched})"

    async def _report(
        self, spec: HookInput, sha: str, state: State, description: str, url: str | None = None
    ) -> None:
        try:
            await workflow.execute_activity(
                REPORT_ACTIVITY,
                Report(spec.delivery, spec.app_id, sha, state, description, url),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=REPORT_RETRY,
            )
        except ActivityError as e:
            self.unreported = failure_reason(e)

    async def _remove(self, spec: HookInput, work: Work) -> tuple[bool, str]:
        try:
            said: str = await workflow.execute_activity(
                REMOVE_ACTIVITY,
                LaunchInput(spec.delivery, spec.app_id, work),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["Refused"]),
            )
        except ActivityError as e:
            return False, f"{work.what}: the preview was not removed: {failure_reason(e)}"
        return True, f"{work.what}: {said}"


def _final(ended: Ended, environment: str) -> tuple[State, str]:
    if ended.status == "live":
        return State.SUCCESS, f"live on {environment}"
    if ended.status in ("superseded", "cancelled", "retired"):
        return State.ERROR, f"{ended.status}: {ended.reason or 'a newer push'}"
    return State.FAILURE, f"failed: {ended.reason or 'see the build log'}"
