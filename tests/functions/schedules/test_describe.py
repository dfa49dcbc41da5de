"""Triggers in words, as the dashboard shows them next to their specs."""

from __future__ import annotations

import pytest

from shipway.functions.schedules.describe import describe
from shipway.functions.schedules.triggers import parse


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("0 * * * *", "every hour"),
        ("@hourly", "every hour"),
        ("30 * * * *", "every hour at minute 30"),
        ("0 3 * * *", "at 03:00 every day"),
        ("0 9,17 * * *", "at 09:00 and 17:00 every day"),
        ("0 */2 * * *", "every 2 hours"),
        ("0 9-17 * * 1-5", "every hour from 09:00 to 17:00 on weekdays"),
        ("*/10 9-17 * * *", "every 10 minutes from 09:00 to 17:50"),
        ("* 3 * * *", "every minute from 03:00 to 03:59"),
        ("*/5 * * 1 *", "every 5 minutes in January"),
        ("0 0 * 1,7 *", "at 00:00 every day in January and July"),
        ("5 4 * * sun", "at 04:05 on Sundays"),
        ("@weekly", "at 00:00 on Sundays"),
        ("0 10 * * 6,0", "at 10:00 on weekends"),
        ("0 8 * * 2-4", "at 08:00 on Tuesday to Thursday"),
        ("0 12 * * 1,3,5", "at 12:00 on Mondays, Wednesdays and Fridays"),
        ("0 0 1 * *", "at 00:00 on day 1 of every month"),
        ("0 0 1,15 * *", "at 00:00 on days 1 and 15 of every month"),
        ("0 0 1 1 *", "at 00:00 on 1 January"),
        ("0 6 1 1,4,7,10 *", "at 06:00 on day 1 of January, April, July and October"),
        ("0 0 1 * 1", "at 00:00 on day 1 of every month and on Mondays"),
        ("1,2,3,7 1,5,9 * * *", "at minutes 1, 2, 3 and 7 past hours 1, 5 and 9 every day"),
    ],
)
def test_a_cron_expression_in_words(spec: str, words: str) -> None:
    assert describe(parse(spec)) == words


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("R5/2026-12-01T00:00:00Z/PT2H", "every 2 hours from 2026-12-01 00:00 UTC, 5 times"),
        ("R/2026-12-01T00:00:00/P1D", "every day from 2026-12-01 00:00 UTC"),
        ("R/2026-12-01T09:30:15/PT15M", "every 15 minutes from 2026-12-01 09:30:15 UTC"),
        ("R/2026-12-01T00:00:00/PT90M", "every 90 minutes from 2026-12-01 00:00 UTC"),
        ("R/2026-01-01T00:00:00/PT1H30M", "every 90 minutes from 2026-01-01 00:00 UTC"),
        ("R/2026-01-01T00:00:00/P2W", "every 2 weeks from 2026-01-01 00:00 UTC"),
        ("R/2026-01-31T00:00:00/P1M", "every month from 2026-01-31 00:00 UTC"),
        ("R3/2026-01-01T00:00:00/P3M", "every 3 months from 2026-01-01 00:00 UTC, 3 times"),
        ("R/2026-01-01T00:00:00/P1Y", "every year from 2026-01-01 00:00 UTC"),
        ("R/2026-01-01T00:00:00/P18M", "every 18 months from 2026-01-01 00:00 UTC"),
        ("R1/2026-12-01T10:30:00+01:00/P1D", "once, at 2026-12-01 09:30 UTC"),
        (
            "R/2026-12-01T00:00:00/PT1H/ET5M",
            "every hour from 2026-12-01 00:00 UTC; a run missed by less than 5 minutes is "
            "still made",
        ),
    ],
)
def test_a_repeating_interval_in_words(spec: str, words: str) -> None:
    assert describe(parse(spec)) == words
