"""The function workers' side of a scheduled run: run it, and report a failure to the
function's webhook (retried) and the audit trail."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from sqlalchemy import select
from temporalio import activity

from shipway.accounts.roles import SYSTEM_ACTOR
from shipway.events import Event, emit
from shipway.functions.invoke import Invoker
from shipway.functions.outcome import RunStatus
from shipway.functions.workflow import RUN_ACTIVITY, RunReport, ScheduledRun
from shipway.store import Store
from shipway.store.tables import Function

log = logging.getLogger(__name__)

#: Attempts to deliver a failure to the webhook, with a doubling pause from the first.
WEBHOOK_ATTEMPTS = 4
WEBHOOK_FIRST_PAUSE = 1.0


class FunctionActivities:
    def __init__(self, invoker: Invoker, store: Store) -> None:
        self.invoker = invoker
        self.store = store

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
