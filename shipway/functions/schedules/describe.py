"""A trigger in words, as a person would say it: "every 15 minutes", "at 03:00 every day",
"every 2 hours from 2026-12-01 00:00 UTC, 5 times". Times are UTC, as the triggers run."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from shipway.functions.schedules.triggers import Cron, Months, Repeating, Trigger

#: Most run times of a day spelled out one by one ("at 09:00, 13:00 and 17:00").
MAX_TIMES = 4
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August"]
_MONTHS += ["September", "October", "November", "December"]
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_UNITS = (
    ("week", timedelta(weeks=1)),
    ("day", timedelta(days=1)),
    ("hour", timedelta(hours=1)),
    ("minute", timedelta(minutes=1)),
    ("second", timedelta(seconds=1)),
)


def describe(trigger: Trigger) -> str:
    """TRIGGER in words."""
    if isinstance(trigger, Cron):
        return _cron(trigger)
    return _repeating(trigger)


# --- ISO-8601 repeating intervals -----------------------------------------------------------


def _repeating(trigger: Repeating) -> str:
    start = trigger.start.strftime("%Y-%m-%d %H:%M" + (":%S" if trigger.start.second else ""))
    if trigger.count == 1:
        words = f"once, at {start} UTC"
    else:
        words = f"{_period(trigger.period)} from {start} UTC"
        if trigger.count is not None:
            words += f", {trigger.count} times"
    if trigger.epsilon is not None:
        words += f"; a run missed by less than {_amount(trigger.epsilon)} is still made"
    return words


def _period(period: timedelta | Months) -> str:
    if isinstance(period, Months):
        years, months = divmod(period.count, 12)
        return _every(years, "year") if not months else _every(period.count, "month")
    return "every " + _amount(period).removeprefix("1 ")


def _amount(span: timedelta) -> str:
    """SPAN in the largest unit that measures it whole: `90 minutes`, `1 day`."""
    for unit, size in _UNITS:
        if span % size == timedelta(0):
            return _count(span // size, unit)
    return _count(int(span.total_seconds()), "second")


def _every(n: int, unit: str) -> str:
    return f"every {unit}" if n == 1 else f"every {n} {unit}s"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


# --- cron -----------------------------------------------------------------------------------


def _cron(cron: Cron) -> str:
    days = _days(cron)
    minutes, hours = sorted(cron.minute), sorted(cron.hour)
    if len(minutes) * len(hours) <= MAX_TIMES:
        often = "at " + _listed(f"{h:02d}:{m:02d}" for h in hours for m in minutes)
    else:
        often = _often(minutes, hours)
    if often.startswith("at ") and not days.startswith("on "):
        days = f"every day {days}"  # at 03:00 every day (in January)
    return f"{often} {days}".strip()


def _often(minutes: list[int], hours: list[int]) -> str:
    """The runs of a day: "every 15 minutes", "every 2 hours from 09:00 to 17:00"…"""
    step = _step(minutes)
    if step is not None and minutes[0] == 0 and minutes[-1] + step > 59:
        often = _every(step, "minute")
        if len(hours) == 24:
            return often
        if len(hours) == 1 or _step(hours) == 1:
            return f"{often} from {hours[0]:02d}:00 to {hours[-1]:02d}:{minutes[-1]:02d}"
        return f"{often} during hours {_listed(map(str, hours))}"
    step = _step(hours)
    if len(minutes) == 1 and step is not None:
        minute, often = minutes[0], _every(step, "hour")
        if hours[0] == 0 and hours[-1] + step > 23:
            return often + (f" at minute {minute}" if minute else "")
        return f"{often} from {hours[0]:02d}:{minute:02d} to {hours[-1]:02d}:{minute:02d}"
    return f"at minutes {_listed(map(str, minutes))} past hours {_listed(map(str, hours))}"


def _days(cron: Cron) -> str:
    """The days part: '' when every day, else "on weekdays", "on day 1 of every month"…"""
    all_dom, all_dow = len(cron.day_of_month) == 31, len(cron.day_of_week) == 7
    months = sorted(cron.month)
    in_months = "" if len(months) == 12 else " in " + _listed(_MONTHS[m - 1] for m in months)
    weekdays = "" if all_dow else _weekdays(sorted(cron.day_of_week))
    if all_dom:
        return (weekdays + in_months).strip()
    dom = sorted(cron.day_of_month)
    if len(dom) == 1 and len(months) == 1 and all_dow:
        return f"on {dom[0]} {_MONTHS[months[0] - 1]}"
    plural = "day" if len(dom) == 1 else "days"
    of = in_months.replace(" in ", " of ", 1) if in_months else " of every month"
    dates = f"on {plural} {_listed(map(str, dom))}{of}"
    if all_dow:
        return dates
    return f"{dates} and {weekdays}"


def _weekdays(days: list[int]) -> str:
    if days == [1, 2, 3, 4, 5]:
        return "on weekdays"
    if days == [0, 6]:
        return "on weekends"
    if len(days) >= 3 and days == list(range(days[0], days[-1] + 1)):
        return f"on {_DAYS[days[0]]} to {_DAYS[days[-1]]}"
    return "on " + _listed(_DAYS[d] + "s" for d in days)


def _step(values: list[int]) -> int | None:
    """K when VALUES go up by K from the first to the last, else None."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    return step if values == list(range(values[0], values[-1] + 1, step)) else None


def _listed(items: Iterable[str]) -> str:
    found = list(items)
    return found[0] if len(found) == 1 else ", ".join(found[:-1]) + " and " + found[-1]
