"""Short durations: each unit, and what is not one (never an overflow)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shipway.durations import parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        (" 12h ", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("999999w", timedelta(weeks=999999)),
    ],
)
def test_each_unit(text: str, expected: timedelta) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "5", "m", "1.5h", "-3d", "3 d", "2y", "9999999999999w", "\uff11h"]
)
def test_what_is_not_a_duration(text: str) -> None:
    assert parse(text) is None
