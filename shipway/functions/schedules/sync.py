"""Keep a function's Temporal schedules in step with its triggers in the store."""

from __future__ import annotations

from temporalio.client import Client

from shipway.errors import ServiceError
from shipway.functions.schedules import temporal, triggers
from shipway.functions.service import TriggerChange
from shipway.functions.workflow import FUNCTIONS_QUEUE, ScheduledRun, schedule_id

WORKFLOW = "shipway.FunctionRun"


async def sync(
    client: Client | None, organization_id: int, function: str, change: TriggerChange
) -> None:
    """Create or update a schedule per current trigger; delete those of removed ones."""
    if not change.current and not change.removed:
        return
    if client is None:
        raise ServiceError("Temporal is not reachable; the schedules were not changed")
    for name, (spec, params) in change.current.items():
        await temporal.apply(
            client,
            schedule_id(organization_id, function, name),
            triggers.parse(spec),
            WORKFLOW,
            ScheduledRun(organization_id, function, name, params),
            FUNCTIONS_QUEUE,
        )
    for name in change.removed:
        await temporal.remove(client, schedule_id(organization_id, function, name))
