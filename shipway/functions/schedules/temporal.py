"""Function triggers as Temporal Schedules: Temporal keeps the timetable, so planned runs are
separate from the runs themselves and survive shipway restarting.

Each trigger becomes one schedule whose action starts a workflow. The mapping is exact: a cron
expression becomes calendars (not Temporal's own cron strings, whose day rule differs), a fixed
period an interval aligned to the start, a calendar period calendars on the start's day.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from shipway.errors import ServiceError, ValidationError
from shipway.functions.schedules.triggers import (
    Cron,
    Months,
    Repeating,
    Trigger,
    final_run,
    runs_left,
)

#: The shortest catch-up window Temporal honours; it treats anything shorter as this.
MIN_CATCHUP = timedelta(seconds=10)
#: Runs are independent, as with cron: one starts on time even if the last is still going.
OVERLAP = ScheduleOverlapPolicy.ALLOW_ALL
#: The years Temporal's calendars can name.
FIRST_YEAR, LAST_YEAR = 2000, 2100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVERY_DAY = (ScheduleRange(0, 6),)


def schedule_for(
    trigger: Trigger, action: ScheduleActionStartWorkflow, now: datetime | None = None
) -> Schedule:
    """The Temporal schedule that runs ACTION when TRIGGER says; NOW decides which counted runs
    are already past."""
    epsilon = trigger.epsilon if isinstance(trigger, Repeating) else None
    return Schedule(
        action=action,
        spec=_spec(trigger),
        policy=SchedulePolicy(
            overlap=OVERLAP, catchup_window=max(epsilon or MIN_CATCHUP, MIN_CATCHUP)
        ),
        state=_state(trigger, now or datetime.now(UTC)),
    )


async def apply(
    client: Client, schedule_id: str, trigger: Trigger, workflow: str, arg: Any, task_queue: str
) -> None:
    """Make schedule SCHEDULE_ID start WORKFLOW(ARG) on TASK_QUEUE as TRIGGER says: create it, or
    replace an existing one's timetable and action. Runs are named SCHEDULE_ID plus their time."""
    action = ScheduleActionStartWorkflow(workflow, arg, id=schedule_id, task_queue=task_queue)
    schedule = schedule_for(trigger, action)
    with _translated(schedule_id):
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await client.get_schedule_handle(schedule_id).update(replace)


async def remove(client: Client, schedule_id: str) -> None:
    """Delete a schedule; runs it already started carry on. A missing schedule is no error."""
    with _translated(schedule_id):
        try:
            await client.get_schedule_handle(schedule_id).delete()
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND:
                raise


async def list_ids(client: Client, prefix: str) -> list[str]:
    """The ids of the schedules starting with PREFIX, sorted. Temporal's list lags a moment
    behind creates and deletes."""
    with _translated(prefix + "*"):
        return sorted(
            [
                entry.id
                async for entry in await client.list_schedules()
                if entry.id.startswith(prefix)
            ]
        )


@contextmanager
def _translated(schedule_id: str) -> Iterator[None]:
    """Temporal's refusals as shipway errors: a bad schedule is invalid, anything else means
    Temporal cannot be used right now."""
    try:
        yield
    except RPCError as e:
        if e.status == RPCStatusCode.INVALID_ARGUMENT:
            raise ValidationError(f"Temporal refused schedule {schedule_id}: {e.message}") from e
        raise ServiceError(f"Temporal failed on schedule {schedule_id}: {e.message}") from e


def _spec(trigger: Trigger) -> ScheduleSpec:
    if isinstance(trigger, Cron):
        return ScheduleSpec(calendars=_cron_calendars(trigger))
    if isinstance(trigger.period, Months):
        calendars = _month_calendars(trigger.start, trigger.period.count)
        return ScheduleSpec(calendars=calendars, start_at=trigger.start, end_at=final_run(trigger))
    # Temporal counts intervals from the Unix epoch; the offset puts them on the start.
    offset = (trigger.start - _EPOCH) % trigger.period
    return ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=trigger.period, offset=offset)],
        start_at=trigger.start,
        end_at=final_run(trigger),
    )


def _state(trigger: Trigger, now: datetime) -> ScheduleState:
    """Counted triggers take only the runs still ahead; one whose runs are all past is paused."""
    if not isinstance(trigger, Repeating) or trigger.count is None:
        return ScheduleState()
    left = runs_left(trigger, now)
    if not left:
        return ScheduleState(paused=True, note=f"all {trigger.count} runs are in the past")
    return ScheduleState(limited_actions=True, remaining_actions=left)


def _cron_calendars(cron: Cron) -> list[ScheduleCalendarSpec]:
    """One calendar, or two when a day matching either day field runs: Temporal's calendars
    require every field to match, so classic cron's 'either' is their union."""
    if cron.either_day:
        return [
            _cron_calendar(cron, _ranges(cron.day_of_month), _EVERY_DAY),
            _cron_calendar(cron, (ScheduleRange(1, 31),), _ranges(cron.day_of_week)),
        ]
    return [_cron_calendar(cron, _ranges(cron.day_of_month), _ranges(cron.day_of_week))]


def _cron_calendar(
    cron: Cron, days_of_month: Sequence[ScheduleRange], days_of_week: Sequence[ScheduleRange]
) -> ScheduleCalendarSpec:
    return ScheduleCalendarSpec(
        minute=_ranges(cron.minute),
        hour=_ranges(cron.hour),
        day_of_month=days_of_month,
        month=_ranges(cron.month),
        day_of_week=days_of_week,
    )


def _month_calendars(start: datetime, every: int) -> list[ScheduleCalendarSpec]:
    """Calendars for every EVERY months from START's month, on its day and time of day.

    The months a year holds repeat after a cycle of lcm(EVERY, 12) / 12 years (one for P1M or
    P3M, five for P5M), so there is one calendar per year of the cycle, limited to those years.
    """
    cycle = math.lcm(every, 12) // 12
    first = start.year * 12 + start.month - 1
    calendars = []
    for year in range(start.year, start.year + cycle):
        months = [m for m in range(1, 13) if (year * 12 + m - 1 - first) % every == 0]
        years = _years(year, cycle)
        if not months or years is None:
            continue
        calendars.append(
            ScheduleCalendarSpec(
                second=[ScheduleRange(start.second)],
                minute=[ScheduleRange(start.minute)],
                hour=[ScheduleRange(start.hour)],
                day_of_month=[ScheduleRange(start.day)],
                month=_ranges(months),
                year=years,
            )
        )
    return calendars


def _years(year: int, cycle: int) -> list[ScheduleRange] | None:
    """YEAR and every CYCLE-th year after it that Temporal can name; all years for a cycle of
    one (START_AT skips those before the start); None when none is left."""
    if cycle == 1:
        return []
    while year < FIRST_YEAR:
        year += cycle
    return [ScheduleRange(year, LAST_YEAR, cycle)] if year <= LAST_YEAR else None


def _ranges(values: Sequence[int] | frozenset[int]) -> list[ScheduleRange]:
    """Sorted VALUES as the fewest inclusive ranges of consecutive numbers."""
    ranges: list[ScheduleRange] = []
    for value in sorted(values):
        if ranges and ranges[-1].end == value - 1:
            ranges[-1] = ScheduleRange(ranges[-1].start, value)
        else:
            ranges.append(ScheduleRange(value))
    return ranges
