"""Trigger specs: what parses, what is refused and why, and when the runs are planned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shipway.errors import ValidationError
from shipway.functions.schedules.triggers import (
    Cron,
    Months,
    Repeating,
    final_run,
    next_times,
    parse,
    runs_left,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def planned(spec: str, after: str, n: int = 5) -> list[str]:
    return [t.strftime("%Y-%m-%d %H:%M:%S %a") for t in next_times(parse(spec), at(after), n)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "R/2018-01-01T00:00:00Z/PT5M/ET1M",
            Repeating(at("2018-01-01"), timedelta(minutes=5), None, timedelta(minutes=1)),
        ),
        (
            "R/2018-01-01T00:00:00Z/PT5M/EPT1M",
            Repeating(at("2018-01-01"), timedelta(minutes=5), None, timedelta(minutes=1)),
        ),
        ("R5/2018-01-31T10:00:00Z/P1M", Repeating(at("2018-01-31T10:00"), Months(1), 5)),
        ("R/2018-01-01T00:00:00Z/P1Y6M", Repeating(at("2018-01-01"), Months(18))),
        ("R/2018-01-01T00:00:00Z/P1DT12H", Repeating(at("2018-01-01"), timedelta(hours=36))),
        ("R/2018-01-01T00:00:00Z/P2W", Repeating(at("2018-01-01"), timedelta(days=14))),
        ("R/2018-01-01/PT1H", Repeating(at("2018-01-01"), timedelta(hours=1))),
        ("R/2018-01-01T12:00:00/PT1H", Repeating(at("2018-01-01T12:00"), timedelta(hours=1))),
        ("R/2018-01-01T12:00:00+02:00/PT1H", Repeating(at("2018-01-01T10:00"), timedelta(hours=1))),
        ("R/2018-01-01T00:00:00Z/PT1H/ET0S", Repeating(at("2018-01-01"), timedelta(hours=1))),
        (
            "R/2018-01-01T00:00:00Z/PT1H/E1D",
            Repeating(at("2018-01-01"), timedelta(hours=1), None, timedelta(days=1)),
        ),
        ("  r3/2018-01-01T00:00:00Z/pt1h  ", Repeating(at("2018-01-01"), timedelta(hours=1), 3)),
    ],
)
def test_repeating_intervals_parse(spec: str, expected: Repeating) -> None:
    assert parse(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "* * * * *",
        "*/15 * * * *",
        "0 9 * * mon-fri",
        "0 9 * * MON-FRI",
        "0 0 1 jan,jul *",
        "0 0 1 January *",
        "5-55/10 8-18 * * 1-5",
        "5/15 * * * *",
        "0 0 * * 7",
        "0 0 29 2 *",
        "0 0 28-31 * *",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    ],
)
def test_cron_expressions_parse(spec: str) -> None:
    trigger = parse(spec)
    assert isinstance(trigger, Cron)
    assert trigger.expression == spec


def test_cron_fields_expand() -> None:
    trigger = parse("5/20 8-10 1,15 jan-mar/2 5-7")
    assert isinstance(trigger, Cron)
    assert trigger.minute == {5, 25, 45}
    assert trigger.hour == {8, 9, 10}
    assert trigger.day_of_month == {1, 15}
    assert trigger.month == {1, 3}
    assert trigger.day_of_week == {5, 6, 0}
    assert trigger.either_day


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "needs a cron expression or an ISO-8601 interval"),
        ("61 * * * *", "cron: minute field '61' is out of range 0-59"),
        ("* 24 * * *", "cron: hour field '24' is out of range 0-23"),
        ("* * 0 * *", "cron: day-of-month field '0' is out of range 1-31"),
        ("* * * 13 *", "cron: month field '13' is out of range 1-12"),
        ("* * * * 8", "cron: day-of-week field '8' is out of range 0-7"),
        ("0,61 * * * *", "cron: minute field '61' is out of range 0-59"),
        ("50-61 * * * *", "cron: minute field '61' is out of range 0-59"),
        ("* * * *", "has 4 fields; cron needs 5"),
        ("* * * * * *", "has 6 fields; cron needs 5"),
        ("*/0 * * * *", "cron: minute field '*/0' has a step of 0"),
        ("*/x * * * *", "cron: minute field '*/x' has a step that is not a number"),
        ("* * * foo *", "cron: month field 'foo' is not a number or a month name"),
        ("* * * * funday", "cron: day-of-week field 'funday' is not a number or a day name"),
        ("x * * * *", "cron: minute field 'x' is not a number"),
        ("* * 20-10 * *", "cron: day-of-month field '20-10' runs backwards"),
        ("1,,2 * * * *", "cron: minute field '1,,2' has an empty item"),
        ("0 0 30 2 *", "the day-of-month field '30' never falls in the month field '2'"),
        ("@reboot", "cron: unknown shorthand '@reboot'"),
        ("R/2018-13-01/PT5M", "ISO-8601 interval: the start '2018-13-01' is not a date-time"),
        ("R//PT5M", "ISO-8601 interval: the start '' is not a date-time"),
        ("R/PT5M/2018-01-01", "ISO-8601 interval: the start 'PT5M' is not a date-time"),
        ("R/2018-01-01T00:00:00.5Z/PT5M", "the start '2018-01-01T00:00:00.5Z' has a fraction"),
        ("R0/2018-01-01/PT5M", "R0 repeats nothing"),
        ("R-1/2018-01-01/PT5M", "the repeat count 'R-1' is not R or R<number>"),
        ("Rx/2018-01-01/PT5M", "the repeat count 'Rx' is not R or R<number>"),
        ("R/2018-01-01/P5X", "ISO-8601 interval: the period 'P5X' is not a duration"),
        ("R/2018-01-01/P", "ISO-8601 interval: the period 'P' is not a duration"),
        ("R/2018-01-01/PT", "ISO-8601 interval: the period 'PT' is not a duration"),
        ("R/2018-01-01/P1DT", "ISO-8601 interval: the period 'P1DT' is not a duration"),
        ("R/2018-01-01/PT1.5S", "ISO-8601 interval: the period 'PT1.5S' is not a duration"),
        ("R/2018-01-01/5M", "ISO-8601 interval: the period '5M' is not a duration"),
        ("R/2018-01-01/PT0S", "ISO-8601 interval: the period 'PT0S' is zero"),
        ("R/2018-01-01/P1M1D", "the period 'P1M1D' mixes months or years with days or hours"),
        ("R/2018-01-01/PT5M/X1M", "the epsilon 'X1M' is not E and a duration"),
        ("R/2018-01-01/PT5M/E", "the epsilon 'E' is not E and a duration"),
        ("R/2018-01-01/PT5M/ET1X", "the epsilon 'ET1X' is not E and a duration"),
        ("R/2018-01-01/PT5M/EP1M", "the epsilon 'EP1M' is in months or years"),
        ("R/2018-01-01", "'R/2018-01-01' is not R[n]/START/PERIOD[/E<epsilon>]"),
        ("R/2018-01-01/PT5M/ET1M/x", "is not R[n]/START/PERIOD[/E<epsilon>]"),
        ("R99999999999999999999999/2026-01-01T00:00:00Z/PT1M", "is more than 9223372036854775807"),
        ("R9223372036854775808/2026-01-01/PT1M", "is more than 9223372036854775807"),
        ("R" + "9" * 5000 + "/2026-01-01/PT1M", "is more than 9223372036854775807"),
        ("R/2026-01-01/PT99999999999999999999999M", "'PT99999999999999999999999M' is longer than"),
        ("R/2026-01-01/P99999999999999999999999M", "is longer than 9999 years"),
        ("R/2026-01-01/P999999999W", "is longer than 9999 years"),
        ("R/2026-01-01/P10000Y", "is longer than 9999 years"),
        ("R/2026-01-01/PT" + "9" * 5000 + "S", "is longer than 9999 years"),
        ("R/2026-01-01/PT1M/ET99999999999999999999999M", "is longer than 9999 years"),
    ],
)
def test_bad_specs_name_the_bad_part(spec: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(spec)
    assert message in caught.value.message


def test_every_quarter_hour() -> None:
    assert planned("*/15 * * * *", "2026-03-01T10:07:30") == [
        "2026-03-01 10:15:00 Sun",
        "2026-03-01 10:30:00 Sun",
        "2026-03-01 10:45:00 Sun",
        "2026-03-01 11:00:00 Sun",
        "2026-03-01 11:15:00 Sun",
    ]


def test_the_next_run_is_strictly_later() -> None:
    assert planned("*/15 * * * *", "2026-03-01T10:15:00", 1) == ["2026-03-01 10:30:00 Sun"]


def test_weekday_mornings() -> None:
    assert planned("0 9 * * mon-fri", "2026-03-06T09:00:00") == [
        "2026-03-09 09:00:00 Mon",
        "2026-03-10 09:00:00 Tue",
        "2026-03-11 09:00:00 Wed",
        "2026-03-12 09:00:00 Thu",
        "2026-03-13 09:00:00 Fri",
    ]


def test_both_day_fields_restricted_means_either_day() -> None:
    assert planned("0 0 1,15 * mon", "2026-03-01T00:00:00", 4) == [
        "2026-03-02 00:00:00 Mon",
        "2026-03-09 00:00:00 Mon",
        "2026-03-15 00:00:00 Sun",
        "2026-03-16 00:00:00 Mon",
    ]


def test_a_stepped_day_of_month_with_a_weekday_needs_both() -> None:
    assert planned("0 0 */10 * mon", "2026-01-01T00:00:00", 3) == [
        "2026-05-11 00:00:00 Mon",
        "2026-06-01 00:00:00 Mon",
        "2026-08-31 00:00:00 Mon",
    ]


def test_leap_days_only() -> None:
    assert planned("30 12 29 feb *", "2026-01-01T00:00:00", 2) == [
        "2028-02-29 12:30:00 Tue",
        "2032-02-29 12:30:00 Sun",
    ]


def test_sunday_is_0_and_7() -> None:
    assert planned("0 0 * * 0", "2026-03-01T00:00:00", 2) == planned("0 0 * * 7", "2026-03-01", 2)


def test_shorthands() -> None:
    assert planned("@hourly", "2026-03-01T10:00:00", 1) == ["2026-03-01 11:00:00 Sun"]
    assert planned("@weekly", "2026-03-01T10:00:00", 1) == ["2026-03-08 00:00:00 Sun"]
    assert planned("@monthly", "2026-03-01T10:00:00", 1) == ["2026-04-01 00:00:00 Wed"]
    assert planned("@yearly", "2026-03-01T10:00:00", 1) == ["2027-01-01 00:00:00 Fri"]


def test_a_fixed_period_from_a_past_start_stays_aligned_to_the_start() -> None:
    assert planned("R/2018-01-01T00:00:07Z/PT5M/ET1M", "2026-03-01T10:07:30", 3) == [
        "2026-03-01 10:10:07 Sun",
        "2026-03-01 10:15:07 Sun",
        "2026-03-01 10:20:07 Sun",
    ]


def test_a_future_start_is_the_first_run() -> None:
    assert planned("R/2030-01-01T06:00:00Z/P1DT12H", "2026-03-01", 3) == [
        "2030-01-01 06:00:00 Tue",
        "2030-01-02 18:00:00 Wed",
        "2030-01-04 06:00:00 Fri",
    ]


def test_days_are_fixed_24_hours() -> None:
    assert planned("R/2018-01-01T00:00:00Z/P1D", "2026-03-28T12:00:00", 2) == [
        "2026-03-29 00:00:00 Sun",
        "2026-03-30 00:00:00 Mon",
    ]


def test_a_start_with_an_offset_is_taken_in_utc() -> None:
    trigger = parse("R/2026-03-01T09:00:00+01:00/PT1H")
    assert isinstance(trigger, Repeating)
    assert trigger.start == at("2026-03-01T08:00:00")
    after = datetime(2026, 3, 1, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert next_times(trigger, after, 1) == [at("2026-03-01T10:00:00")]


def test_a_monthly_run_from_the_31st_skips_shorter_months() -> None:
    assert planned("R/2026-01-31T10:00:00Z/P1M", "2026-01-01", 6) == [
        "2026-01-31 10:00:00 Sat",
        "2026-03-31 10:00:00 Tue",
        "2026-05-31 10:00:00 Sun",
        "2026-07-31 10:00:00 Fri",
        "2026-08-31 10:00:00 Mon",
        "2026-10-31 10:00:00 Sat",
    ]


def test_every_five_months_crosses_years() -> None:
    assert planned("R/2026-11-15T00:00:00Z/P5M", "2026-01-01", 4) == [
        "2026-11-15 00:00:00 Sun",
        "2027-04-15 00:00:00 Thu",
        "2027-09-15 00:00:00 Wed",
        "2028-02-15 00:00:00 Tue",
    ]


def test_a_yearly_run_from_a_leap_day_runs_in_leap_years() -> None:
    assert planned("R/2024-02-29T00:00:00Z/P1Y", "2024-03-01", 2) == [
        "2028-02-29 00:00:00 Tue",
        "2032-02-29 00:00:00 Sun",
    ]


def test_a_count_stops_the_runs() -> None:
    spec = "R5/2026-01-01T00:00:00Z/PT1H"
    assert len(planned(spec, "2025-12-31", 10)) == 5
    assert planned(spec, "2026-01-01T02:30:00", 10) == [
        "2026-01-01 03:00:00 Thu",
        "2026-01-01 04:00:00 Thu",
    ]
    assert planned(spec, "2026-01-01T04:00:00", 10) == []


def test_a_count_includes_only_months_that_have_the_day() -> None:
    trigger = parse("R3/2026-01-31T00:00:00Z/P1M")
    assert isinstance(trigger, Repeating)
    assert final_run(trigger) == at("2026-05-31")


def test_runs_left_counts_only_runs_ahead() -> None:
    trigger = parse("R5/2026-01-01T00:00:00Z/PT1H")
    assert isinstance(trigger, Repeating)
    assert runs_left(trigger, at("2025-01-01")) == 5
    assert runs_left(trigger, at("2026-01-01T00:00:00")) == 4
    assert runs_left(trigger, at("2026-01-01T02:30:00")) == 2
    assert runs_left(trigger, at("2030-01-01")) == 0
    assert final_run(trigger) == at("2026-01-01T04:00:00")


def test_an_endless_trigger_has_no_count_and_no_end() -> None:
    trigger = parse("R/2026-01-01T00:00:00Z/PT1H")
    assert isinstance(trigger, Repeating)
    assert runs_left(trigger, at("2030-01-01")) is None
    assert final_run(trigger) is None


def test_a_huge_count_has_no_end_in_reach() -> None:
    trigger = parse("R99999999999/2026-01-01T00:00:00Z/P1Y")
    assert isinstance(trigger, Repeating)
    assert final_run(trigger) is None
    assert len(next_times(trigger, at("9990-01-01"), 100)) == 9


def test_the_largest_count_and_period_still_plan() -> None:
    trigger = parse("R9223372036854775807/2026-01-01T00:00:00Z/P9999Y")
    assert isinstance(trigger, Repeating)
    assert final_run(trigger) is None
    assert next_times(trigger, at("2025-01-01"), 2) == [at("2026-01-01")]


def test_naive_after_is_utc_and_n_of_zero_is_nothing() -> None:
    trigger = parse("0 * * * *")
    assert next_times(trigger, datetime(2026, 1, 1, 0, 30), 1) == [at("2026-01-01T01:00:00")]
    assert next_times(trigger, at("2026-01-01"), 0) == []
