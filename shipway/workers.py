"""shipway's Temporal workers, run inside the server process and restarted if they fail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from shipway import __version__

log = logging.getLogger(__name__)

CONTROL_QUEUE = "shipway-control"

#: Long polls each worker keeps open unless told otherwise (the SDK's default is 5 and 5).
#: Temporal renews every open poll about once a minute, and at rest that renewal is most
#: of what the server does; a task waits for a poll only while another is being fetched.
WORKFLOW_POLLS = 2
ACTIVITY_POLLS = 1


#: What the workers of this shipway tell Temporal they run.
BUILD_ID = f"shipway-{__version__}"


@dataclass
class ProbeInput:
    """What a health probe carries through Temporal and back."""

    nonce: str


@activity.defn(name="shipway.probe")
async def probe_activity(payload: ProbeInput) -> str:
    return f"{payload.nonce}:{activity.info().task_queue}"


@workflow.defn(name="shipway.Probe")
class ProbeWorkflow:
    """A workflow of one activity: proves the control workers poll and answer end to end."""

    @workflow.run
    async def run(self, payload: ProbeInput) -> str:
        return await workflow.execute_activity(
            probe_activity,
            payload,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )


async def run_probe(client: Client, task_queue: str, timeout: float = 10.0) -> dict[str, Any]:
    """Run one ProbeWorkflow and say how it went and how long it took."""
    nonce = uuid.uuid4().hex
    started = time.perf_counter()
    try:
        answer = await client.execute_workflow(
            ProbeWorkflow.run,
            ProbeInput(nonce=nonce),
            id=f"probe/{nonce}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=timeout),
        )
    except Exception as e:  # any failure of the round trip is what the probe reports
        return {"status": "down", "error": str(e)[:200]}
    if answer != f"{nonce}:{task_queue}":
        return {"status": "down", "error": f"unexpected answer {answer!r}"}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)}


class Workers:
    """Runs one Temporal worker until stopped; a worker that dies is started again."""

    def __init__(
        self,
        client: Client,
        task_queue: str = CONTROL_QUEUE,
        *,
        workflows: Sequence[type] = (ProbeWorkflow,),
        activities: Sequence[Callable[..., Any]] = (probe_activity,),
        graceful: timedelta = timedelta(seconds=5),
        **options: Any,
    ) -> None:
        """GRACEFUL: how long stopping waits for running activities before cancelling them;
        OPTIONS go to each Worker (e.g. a tuner)."""
        self.client = client
        self.task_queue = task_queue
        self.workflows = list(workflows)
        self.activities = list(activities)
        self.options = {
            "max_concurrent_workflow_task_polls": WORKFLOW_POLLS,
            "max_concurrent_activity_task_polls": ACTIVITY_POLLS,
            **options,
        }
        self.graceful = graceful
        self._worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"worker-{self.task_queue}")

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_running

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping:
            self._worker = Worker(
                self.client,
                task_queue=self.task_queue,
                workflows=self.workflows,
                activities=self.activities,
                graceful_shutdown_timeout=self.graceful,
                # Named, not derived: the SDK's own default hashes the code of every module
                # loaded, which took 0.4 s of each process's start.
                build_id=BUILD_ID,
                **self.options,
            )
            try:
                await self._worker.run()
                delay = 0.5
            except Exception as e:  # the worker failed; keep the process up and try again
                log.error("Temporal worker on %s stopped: %s", self.task_queue, e)
            if not self._stopping:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def stop(self) -> None:
        self._stopping = True
        if self._worker is not None and self._worker.is_running:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._worker.shutdown(), self.graceful.total_seconds() + 10)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
