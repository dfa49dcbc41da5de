"""Triggers as Temporal Schedules, on a real Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from shipway.functions.schedules import temporal as schedules
from shipway.functions.schedules.triggers import Repeating, next_times, parse
from shipway.links import connect_temporal
from tests.servers import Servers

pytestmark = pytest.mark.integration

TICK = "shipway.test.Tick"


@workflow.defn(name=TICK)
class Tick:
    """Stands in for a function run: answers with what the schedule passed it."""

    @workflow.run
    async def run(self, params: dict[str, str]) -> str:
        return f"tick {params['name']}"


@dataclass
class Temporal:
    client: Client
    queue: str
    prefix: str
    made: set[str] = field(default_factory=set)

    def id(self, name: str) -> str:
        schedule_id = f"{self.prefix}{name}"
        self.made.add(schedule_id)
        return schedule_id

    async def apply(self, name: str, spec: str) -> str:
        schedule_id = self.id(name)
        await schedules.apply(
            self.client, schedule_id, parse(spec), TICK, {"name": name}, self.queue
        )
        return schedule_id

    async def describe(self, schedule_id: str) -> ScheduleDescription:
        return await self.client.get_schedule_handle(schedule_id).describe()


@pytest_asyncio.fixture
async def temporal(servers: Servers) -> AsyncIterator[Temporal]:
    """A client, a worker on a queue of its own, and a schedule-id prefix of its own."""
    client = await connect_temporal(servers.temporal_address, "default")
    tag = uuid.uuid4().hex[:8]
    queue = f"test-schedules-{tag}"
    worker = Worker(
        client, task_queue=queue, workflows=[Tick], workflow_runner=UnsandboxedWorkflowRunner()
    )
    here = Temporal(client, queue, f"fn/test-{tag}/tick/")
    async with worker:
        try:
            yield here
        finally:
            # The list lags behind creates, so what was made is removed by name too.
            for schedule_id in here.made | set(await schedules.list_ids(client, here.prefix)):
                await schedules.remove(client, schedule_id)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    """CHECK's first truthy answer, polling; fails after TIMEOUT seconds."""
    answer = None
    for _ in range(int(timeout / 0.2)):
        answer = await check()
        if answer:
            return answer
        await asyncio.sleep(0.2)
    pytest.fail(f"still {answer!r} after {timeout} s")


async def test_a_two_second_trigger_starts_runs_aligned_to_its_start(temporal: Temporal) -> None:
    schedule_id = await temporal.apply("every-2s", "R/2018-01-01T00:00:01Z/PT2S")

    async def two_actions() -> list[Any]:
        actions = (await temporal.describe(schedule_id)).info.recent_actions
        return list(actions) if len(actions) >= 2 else []

    actions = await eventually(two_actions)
    for action in actions[:2]:
        assert action.scheduled_at.second % 2 == 1
        assert isinstance(action.action, ScheduleActionExecutionStartWorkflow)
        assert action.action.workflow_id.startswith(schedule_id)
        run = temporal.client.get_workflow_handle(action.action.workflow_id)
        assert await run.result() == "tick every-2s"


async def test_the_catch_up_window_is_the_epsilon_and_a_count_limits_actions(
    temporal: Temporal,
) -> None:
    schedule_id = await temporal.apply("counted", "R3/2030-01-01T00:00:00Z/PT1H/ET1M")
    described = (await temporal.describe(schedule_id)).schedule
    assert described.policy.catchup_window == timedelta(minutes=1)
    assert described.policy.overlap == ScheduleOverlapPolicy.ALLOW_ALL
    assert described.state.limited_actions
    assert described.state.remaining_actions == 3
    assert not described.state.paused
    assert described.spec.start_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert described.spec.end_at == datetime(2030, 1, 1, 2, tzinfo=UTC)


async def test_the_largest_count_temporal_holds_is_taken(temporal: Temporal) -> None:
    schedule_id = await temporal.apply("most", "R9223372036854775807/2030-01-01T00:00:00Z/PT1M")
    described = (await temporal.describe(schedule_id)).schedule
    assert described.state.remaining_actions == 2**63 - 1
    assert described.spec.end_at is None


async def test_without_an_epsilon_the_window_is_temporals_minimum(temporal: Temporal) -> None:
    schedule_id = await temporal.apply("no-epsilon", "R/2030-01-01T00:00:00Z/PT1H")
    described = (await temporal.describe(schedule_id)).schedule
    assert described.policy.catchup_window == schedules.MIN_CATCHUP
    assert not described.state.limited_actions


async def test_a_count_whose_runs_are_all_past_is_paused(temporal: Temporal) -> None:
    schedule_id = await temporal.apply("long-ago", "R5/2018-01-01T00:00:00Z/PT1M")
    description = await temporal.describe(schedule_id)
    assert description.schedule.state.paused
    assert description.schedule.state.note == "all 5 runs are in the past"
    assert description.info.next_action_times == []
    assert description.info.num_actions == 0


async def test_applying_again_updates_the_schedule(temporal: Temporal) -> None:
    schedule_id = await temporal.apply("changing", "R/2030-01-01T00:00:00Z/PT1H")
    assert await temporal.apply("changing", "R/2030-01-01T00:00:00Z/PT30M") == schedule_id
    described = (await temporal.describe(schedule_id)).schedule
    assert [i.every for i in described.spec.intervals] == [timedelta(minutes=30)]
    await temporal.apply("changing", "0 9 * * mon-fri")
    described = (await temporal.describe(schedule_id)).schedule
    assert described.spec.intervals == [] and len(described.spec.calendars) == 1
    assert described.spec.start_at is None


async def test_remove_deletes_and_a_missing_schedule_is_fine(temporal: Temporal) -> None:
    schedule_id = await temporal.apply("doomed", "R/2030-01-01T00:00:00Z/PT1H")
    await schedules.remove(temporal.client, schedule_id)
    with pytest.raises(RPCError) as caught:
        await temporal.describe(schedule_id)
    assert caught.value.status == RPCStatusCode.NOT_FOUND
    await schedules.remove(temporal.client, schedule_id)


async def test_list_ids_finds_a_prefix(temporal: Temporal) -> None:
    first = await temporal.apply("a", "R/2030-01-01T00:00:00Z/PT1H")
    second = await temporal.apply("b", "@daily")
    other = f"fn/other-{uuid.uuid4().hex[:8]}/tick/a"
    await schedules.apply(
        temporal.client, other, parse("@daily"), TICK, {"name": "other"}, temporal.queue
    )
    try:

        async def listed() -> list[str]:
            ids = await schedules.list_ids(temporal.client, temporal.prefix)
            return ids if ids == [first, second] else []

        assert await eventually(listed) == [first, second]
    finally:
        await schedules.remove(temporal.client, other)


@pytest.mark.parametrize(
    "spec",
    [
        "*/15 * * * *",
        "0 9 * * mon-fri",
        "0 0 1,15 * mon",
        "0 0 */10 * mon",
        "30 12 29 feb *",
        "R/2018-01-01T00:00:07Z/PT5M",
        "R/2018-01-01T06:00:00Z/P1DT12H",
        "R/2018-01-31T10:20:30Z/P1M",
        "R/2018-11-15T00:00:00Z/P5M",
        "R/2024-02-29T00:00:00Z/P1Y",
        "R/1990-03-01T00:00:00Z/P2Y",
        "R12/2030-01-31T00:00:00Z/P1M",
    ],
)
async def test_temporal_plans_the_times_next_times_plans(temporal: Temporal, spec: str) -> None:
    trigger = parse(spec)
    before = datetime.now(UTC)
    action = ScheduleActionStartWorkflow(TICK, {}, id=temporal.id("planned"), task_queue="none")
    schedule = schedules.schedule_for(trigger, action)
    schedule.state.paused = True
    schedule_id = temporal.id(f"planned-{uuid.uuid4().hex[:8]}")
    await temporal.client.create_schedule(schedule_id, schedule)
    planned = list((await temporal.describe(schedule_id)).info.next_action_times)
    assert planned, "Temporal plans nothing"
    assert planned[0] in next_times(trigger, before, 2)
    assert planned == next_times(trigger, planned[0] - timedelta(microseconds=1), len(planned))
    if isinstance(trigger, Repeating) and trigger.count is not None:
        assert len(planned) <= trigger.count
