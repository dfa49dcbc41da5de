"""Cache affinity: a build goes first to the builder that last built its app only while that
builder is alive, active, in the build's pool and has a slot to spare for it."""

from __future__ import annotations

import pytest

from shipway.fleet import affinity
from shipway.fleet.registry import LOST_AFTER, BuilderRecord

NOW = 1_000_000.0


def fleet(**last: object) -> list[BuilderRecord]:
    """Three builders of pool p, the middle one, b-last, changed by LAST."""
    fields = {"id": "b-last", "pool": "p", "slots": 2, "heartbeat_at": NOW - 1, **last}
    return [
        BuilderRecord(id="b-1", pool="p", slots=4, heartbeat_at=NOW),
        BuilderRecord(**fields),  # type: ignore[arg-type]
        BuilderRecord(id="b-2", pool="p", slots=4, heartbeat_at=NOW),
    ]


def test_the_builder_that_last_built_the_app_is_tried_first() -> None:
    assert affinity.warm_builder("b-last", "p", fleet(), NOW) == "b-last"


@pytest.mark.parametrize(
    "changed",
    [
        {"heartbeat_at": NOW - LOST_AFTER - 1},  # silent too long: lost
        {"state": "draining"},
        {"state": "drained"},
        {"pool": "other"},  # the app's builds now go to another pool
        {"slots": 1},  # one slot: it takes pool builds only, none is waited for
    ],
)
def test_no_build_waits_for_a_builder_that_cannot_take_it(changed: dict[str, object]) -> None:
    assert affinity.warm_builder("b-last", "p", fleet(**changed), NOW) is None


def test_no_builder_is_tried_first_for_an_app_never_built_or_built_on_one_gone() -> None:
    assert affinity.warm_builder(None, "p", fleet(), NOW) is None
    assert affinity.warm_builder("b-gone", "p", fleet(), NOW) is None
