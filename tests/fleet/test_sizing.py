"""Autoscaling policy: sized for busy plus queued slots at the target, within min and max,
waking from zero, shrinking only after idle_after; a bad policy names its pool and key."""

from __future__ import annotations

import pytest

from shipway.errors import ValidationError
from shipway.fleet.sizing import Policy, PoolLoad, Sizer, desired, needed, parse

POLICY = Policy(min=1, max=10, target=0.5, slots=2, idle_after=300)


def load(builders: int, busy: int = 0, queued: int = 0) -> PoolLoad:
    return PoolLoad(builders=builders, slots=2 * builders, busy=busy, queued=queued)


def test_a_backlog_scales_the_pool_up() -> None:
    # 4 busy and 6 queued slots at 1 slot in use per builder (2 slots at 0.5): 10 builders
    assert desired(POLICY, load(2, busy=4, queued=6), idle_for=0) == 10
    assert desired(POLICY, load(2, busy=4, queued=1), idle_for=0) == 5


def test_the_pool_never_grows_past_max() -> None:
    assert desired(POLICY, load(4, busy=8, queued=500), idle_for=0) == 10


def test_a_queued_build_wakes_a_pool_scaled_to_zero() -> None:
    to_zero = Policy(min=0, max=3)
    assert desired(to_zero, load(0), idle_for=1e9) == 0
    assert desired(to_zero, load(0, queued=1), idle_for=0) == 1
    assert desired(Policy(min=0, max=0), load(0, queued=50), idle_for=0) == 0


def test_the_pool_shrinks_only_after_idle_after() -> None:
    quiet = load(6, busy=1)
    assert needed(POLICY, quiet) == 1
    assert desired(POLICY, quiet, idle_for=299) == 6
    assert desired(POLICY, quiet, idle_for=300) == 1


def test_a_lowered_max_applies_at_once() -> None:
    assert desired(Policy(max=2), load(5, busy=1), idle_for=0) == 2


def test_min_is_kept_when_idle() -> None:
    assert desired(Policy(min=2, max=5), load(4), idle_for=1e9) == 2


def test_no_float_noise_in_the_count() -> None:
    assert needed(Policy(max=100, target=0.7, slots=1), load(0, busy=21)) == 30


def test_policies_parse() -> None:
    pools = parse(
        {
            "default": {"min": 0, "max": 4, "target": 0.7, "slots": 2, "idle_after": 300},
            "eu": {"webhook": "https://ops.example.com/scale", "command": "scale eu"},
            "fast": None,
        },
        "fleet.yml",
    )
    assert pools["default"] == Policy(min=0, max=4, target=0.7, slots=2, idle_after=300)
    assert pools["eu"].webhook == "https://ops.example.com/scale"
    assert pools["fast"] == Policy()
    assert parse(None, "fleet.yml") == {}


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (["default"], "`pools:` must map pools to policies"),
        ({"Big Pool": {}}, "a pool name must be"),
        ({"default": 4}, "pool default must be a mapping"),
        ({"default": {"minimum": 1}}, "pool default has unknown keys minimum"),
        ({"default": {"min": -1}}, "pool default: min must be a whole number, 0 or more"),
        ({"default": {"max": 2.5}}, "pool default: max must be a whole number"),
        ({"default": {"min": True}}, "pool default: min must be a whole number"),
        ({"default": {"min": 5, "max": 4}}, r"pool default: min \(5\) is more than max \(4\)"),
        ({"default": {"target": 0}}, r"pool default: target must be a share in \(0, 1\]"),
        ({"default": {"target": 1.5}}, "pool default: target must be"),
        ({"default": {"target": "high"}}, "pool default: target must be"),
        ({"default": {"slots": 0}}, "pool default: slots must be a whole number, 1 or more"),
        ({"default": {"idle_after": -5}}, "pool default: idle_after must be seconds"),
        ({"default": {"command": ["scale"]}}, "pool default: command must be a command line"),
        ({"eu": {"webhook": "ftp://ops.example.com"}}, "pool eu: webhook must be an http"),
        ({"eu": {"webhook": "https://"}}, "pool eu: webhook must be an http"),
    ],
)
def test_a_bad_policy_is_named(data: object, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        parse(data, "fleet.yml")


def test_a_pool_shrinks_to_the_most_it_needed_lately_not_to_the_need_of_the_moment() -> None:
    sizer = Sizer(Policy(max=10, target=1.0, slots=1, idle_after=60))
    assert sizer.size(load(6, busy=6), now=0) == 6
    assert sizer.size(load(6, busy=4), now=5) == 6  # fewer needed: not yet 60 s of it
    assert sizer.size(load(6, busy=1), now=50) == 6
    assert sizer.size(load(6, busy=1), now=65) == 4  # 60 s of fewer: to the window's peak
    assert sizer.size(load(4, busy=1), now=200) == 1  # the busy moments have left the window
    assert sizer.size(load(1, busy=3), now=201) == 3  # it grows at once
