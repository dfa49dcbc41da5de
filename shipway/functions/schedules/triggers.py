"""When a function runs on its own: a cron expression or an ISO-8601 repeating interval, in UTC.

`parse` turns a spec into a `Trigger` and names the bad part when it cannot; `next_times` plans
upcoming runs in pure Python, so listings and tests need no Temporal. `temporal` maps the same
triggers onto Temporal Schedules, which do the running.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from shipway.errors import ValidationError

#: How many days `next_times` looks ahead for a cron expression before giving up: every
#: day-of-week and leap-day combination recurs well within it.
_CRON_HORIZON_DAYS = 400 * 366
#: The last month datetime can hold, as a count of months since year 0.
_LAST_MONTH = 9999 * 12 + 11
#: The most runs a count may ask for (Temporal counts them in 64 bits), and the longest
#: period or epsilon (datetime spans 9999 years: nothing longer plans a second run).
MAX_COUNT = 2**63 - 1
_LONGEST_MONTHS = 9999 * 12
_LONGEST = timedelta(days=9999 * 366)


@dataclass(frozen=True)
class Months:
    """A calendar period of COUNT months (a year is 12): each run keeps the start's day and time,
    and a month without that day (the 31st in April) has no run."""

    count: int


Period = timedelta | Months


@dataclass(frozen=True)
class Cron:
    """Runs at every UTC minute its five fields match. Day of week 0 is Sunday. EITHER_DAY is
    classic cron's rule: when both day fields are restricted, a day matching either one runs."""

    expression: str
    minute: frozenset[int]
    hour: frozenset[int]
    day_of_month: frozenset[int]
    month: frozenset[int]
    day_of_week: frozenset[int]
    either_day: bool


@dataclass(frozen=True)
class Repeating:
    """Runs at START, then every PERIOD; COUNT runs in all (None: forever). A run missed while
    shipway was down is still made when it is less than EPSILON late (None: never)."""

    start: datetime
    period: Period
    count: int | None = None
    epsilon: timedelta | None = None


Trigger = Cron | Repeating


def parse(spec: str) -> Trigger:
    """A trigger from its spec; raises ValidationError naming the part that is wrong."""
    text = spec.strip()
    if not text:
        raise ValidationError("a trigger needs a cron expression or an ISO-8601 interval")
    if text[0] in "Rr":
        return _parse_repeating(text)
    return _parse_cron(text)


def next_times(trigger: Trigger, after: datetime, n: int) -> list[datetime]:
    """The next N planned runs strictly later than AFTER (naive means UTC), fewer if it ends."""
    after = _utc(after)
    runs = _cron_times(trigger, after) if isinstance(trigger, Cron) else _planned(trigger, after)
    return list(itertools.islice(runs, max(n, 0)))


def runs_left(trigger: Repeating, now: datetime) -> int | None:
    """How many of a counted trigger's runs are still ahead of NOW; None when it has no count."""
    if trigger.count is None:
        return None
    upcoming = next(_numbered(trigger, _utc(now)), None)
    return 0 if upcoming is None else trigger.count - upcoming[0]


def final_run(trigger: Repeating) -> datetime | None:
    """When a counted trigger's last run is planned; None when it has no count (or no end
    before the year 9999)."""
    if trigger.count is None:
        return None
    if isinstance(trigger.period, timedelta):
        try:
            return trigger.start + (trigger.count - 1) * trigger.period
        except OverflowError:
            return None
    for number, when in _numbered(trigger, trigger.start - timedelta(microseconds=1)):
        if number == trigger.count - 1:
            return when
    return None


# --- ISO-8601 repeating intervals -----------------------------------------------------------

_DURATION = re.compile(
    r"P(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?"
)
_FIXED_UNITS = {"W": timedelta(weeks=1), "D": timedelta(days=1), "h": timedelta(hours=1)}
_FIXED_UNITS |= {"m": timedelta(minutes=1), "s": timedelta(seconds=1)}
_ISO = "ISO-8601 interval"


def _parse_repeating(text: str) -> Repeating:
    parts = text.split("/")
    if len(parts) not in (3, 4):
        raise ValidationError(f"{_ISO}: '{text}' is not R[n]/START/PERIOD[/E<epsilon>]")
    count = _parse_count(parts[0])
    start = _parse_start(parts[1])
    period = _parse_period(parts[2])
    epsilon = _parse_epsilon(parts[3]) if len(parts) == 4 else None
    return Repeating(start=start, period=period, count=count, epsilon=epsilon)


def _parse_count(text: str) -> int | None:
    digits = text[1:]
    if not digits:
        return None
    if not digits.isascii() or not digits.isdigit():
        raise ValidationError(f"{_ISO}: the repeat count '{text}' is not R or R<number>")
    count = int(digits) if len(digits) <= len(str(MAX_COUNT)) else MAX_COUNT + 1
    if count == 0:
        raise ValidationError(f"{_ISO}: {text} repeats nothing")
    if count > MAX_COUNT:
        raise ValidationError(f"{_ISO}: the repeat count '{text}' is more than {MAX_COUNT}")
    return count


def _parse_start(text: str) -> datetime:
    try:
        start = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValidationError(f"{_ISO}: the start '{text}' is not a date-time") from e
    if start.microsecond:
        raise ValidationError(f"{_ISO}: the start '{text}' has a fraction of a second")
    return _utc(start)


def _parse_duration(text: str) -> tuple[int, timedelta] | None:
    """(months, fixed part) of an ISO-8601 duration in whole numbers, or None if it is not one."""
    found = _DURATION.fullmatch(text.upper())
    if found is None or not any(found.groupdict().values()) or text.upper().endswith("T"):
        return None
    values = {unit: value for unit, value in found.groupdict().items() if value}
    too_long = ValidationError(f"{_ISO}: the duration '{text}' is longer than 9999 years")
    if any(len(value) > 9 for value in values.values()):
        raise too_long
    amounts = {unit: int(value) for unit, value in values.items()}
    months = amounts.pop("Y", 0) * 12 + amounts.pop("M", 0)
    try:
        fixed = sum((_FIXED_UNITS[unit] * value for unit, value in amounts.items()), timedelta())
    except OverflowError:
        raise too_long from None
    if months > _LONGEST_MONTHS or fixed > _LONGEST:
        raise too_long
    return months, fixed


def _parse_period(text: str) -> Period:
    duration = _parse_duration(text)
    if duration is None:
        raise ValidationError(f"{_ISO}: the period '{text}' is not a duration")
    months, fixed = duration
    if months and fixed:
        raise ValidationError(
            f"{_ISO}: the period '{text}' mixes months or years with days or hours; "
            "use one or the other"
        )
    if not months and not fixed:
        raise ValidationError(f"{_ISO}: the period '{text}' is zero")
    return Months(months) if months else fixed


def _parse_epsilon(text: str) -> timedelta | None:
    body = text[1:]
    duration = None
    if text[:1] in ("E", "e") and body:
        duration = _parse_duration(body if body[0] in "Pp" else "P" + body)
    if duration is None:
        raise ValidationError(f"{_ISO}: the epsilon '{text}' is not E and a duration, like ET1M")
    months, fixed = duration
    if months:
        raise ValidationError(
            f"{_ISO}: the epsilon '{text}' is in months or years; "
            "it must be a fixed duration (ET1M is one minute)"
        )
    return fixed or None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _planned(trigger: Repeating, after: datetime) -> Iterator[datetime]:
    return (when for _, when in _numbered(trigger, after))


def _numbered(trigger: Repeating, after: datetime) -> Iterator[tuple[int, datetime]]:
    """(run number from 0, time) of the runs later than AFTER, up to the trigger's count."""
    if isinstance(trigger.period, Months):
        runs: Iterator[tuple[int, datetime]] = enumerate(
            _monthly(trigger.start, trigger.period.count)
        )
    else:
        runs = _fixed(trigger.start, trigger.period, after)
    for number, when in runs:
        if trigger.count is not None and number >= trigger.count:
            return
        if when > after:
            yield number, when


def _fixed(start: datetime, every: timedelta, after: datetime) -> Iterator[tuple[int, datetime]]:
    """Numbered runs of START + k * EVERY, jumping straight to the first one later than AFTER."""
    first = 0 if after < start else (after - start) // every + 1
    for number in itertools.count(first):
        try:
            when = start + number * every
        except OverflowError:
            return
        yield number, when


def _monthly(start: datetime, every: int) -> Iterator[datetime]:
    """START, then every EVERY months on the start's day, skipping months without that day."""
    for index in range(start.year * 12 + start.month - 1, _LAST_MONTH + 1, every):
        year, month = divmod(index, 12)
        if start.day <= calendar.monthrange(year, month + 1)[1]:
            yield start.replace(year=year, month=month + 1)


# --- cron ----------------------------------------------------------------------------------

_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august"]
_MONTHS += ["september", "october", "november", "december"]
_DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    #: what the names are of ("month"), and the number the first name stands for
    noun: str = ""
    names: tuple[str, ...] = ()
    first_named: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, "month", tuple(_MONTHS), 1),
    _Field("day-of-week", 0, 7, "day", tuple(_DAYS), 0),
)


def _parse_cron(text: str) -> Cron:
    expanded = text
    if text.startswith("@"):
        if text.lower() not in _SHORTHANDS:
            known = ", ".join(_SHORTHANDS)
            raise ValidationError(f"cron: unknown shorthand '{text}' (known: {known})")
        expanded = _SHORTHANDS[text.lower()]
    words = expanded.split()
    if len(words) != len(_FIELDS):
        raise ValidationError(
            f"cron: '{text}' has {len(words)} fields; cron needs 5: "
            "minute hour day-of-month month day-of-week"
        )
    minute, hour, dom, month, dow = (
        _parse_field(f, w) for f, w in zip(_FIELDS, words, strict=True)
    )
    dow = frozenset(day % 7 for day in dow)
    either_day = not words[2].startswith("*") and not words[4].startswith("*")
    if not either_day and not any(_days_in(m) >= min(dom) for m in month):
        raise ValidationError(
            f"cron: the day-of-month field '{words[2]}' never falls in the month field '{words[3]}'"
        )
    return Cron(text, minute, hour, dom, month, dow, either_day)


def _days_in(month: int) -> int:
    """The most days MONTH ever has (29 for February)."""
    return calendar.monthrange(2000, month)[1]


def _parse_field(field: _Field, word: str) -> frozenset[int]:
    values: set[int] = set()
    for item in word.split(","):
        if not item:
            raise ValidationError(f"cron: {field.name} field '{word}' has an empty item")
        values.update(_parse_item(field, item))
    return frozenset(values)


def _parse_item(field: _Field, item: str) -> range:
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isascii() or not step_text.isdigit():
            raise ValidationError(
                f"cron: {field.name} field '{item}' has a step that is not a number"
            )
        step = int(step_text)
        if step == 0:
            raise ValidationError(f"cron: {field.name} field '{item}' has a step of 0")
    if span == "*":
        return range(field.low, field.high + 1, step)
    first_text, dash, last_text = span.partition("-")
    first = _parse_value(field, first_text)
    # "5/15" means from 5 to the end, stepping 15, as most crons read it.
    last = _parse_value(field, last_text) if dash else (field.high if slash else first)
    if last < first:
        raise ValidationError(f"cron: {field.name} field '{item}' runs backwards")
    return range(first, last + 1, step)


def _parse_value(field: _Field, text: str) -> int:
    lowered = text.lower()
    for number, name in enumerate(field.names, start=field.first_named):
        if lowered in (name, name[:3]):
            return number
    if not text.isascii() or not text.isdigit():
        kind = f"a number or a {field.noun} name" if field.noun else "a number"
        raise ValidationError(f"cron: {field.name} field '{text}' is not {kind}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise ValidationError(
            f"cron: {field.name} field '{text}' is out of range {field.low}-{field.high}"
        )
    return value


def _cron_times(cron: Cron, after: datetime) -> Iterator[datetime]:
    first = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    times = list(itertools.product(sorted(cron.hour), sorted(cron.minute)))
    start = first.date().toordinal()
    for ordinal in range(start, min(start + _CRON_HORIZON_DAYS, date.max.toordinal() + 1)):
        day = date.fromordinal(ordinal)
        if _day_matches(cron, day):
            for hour, minute in times:
                when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                if when >= first:
                    yield when


def _day_matches(cron: Cron, day: date) -> bool:
    if day.month not in cron.month:
        return False
    by_date = day.day in cron.day_of_month
    by_weekday = day.isoweekday() % 7 in cron.day_of_week
    return (by_date or by_weekday) if cron.either_day else (by_date and by_weekday)
