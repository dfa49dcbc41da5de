"""A delivery's lifecycle: the moves it may make, and none out of an end."""

from __future__ import annotations

import pytest

from shipway.errors import IllegalTransition
from shipway.webhooks.lifecycle import DELIVERIES, DeliveryStatus

S = DeliveryStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.ACCEPTED, S.DEPLOYING),
        (S.ACCEPTED, S.DONE),
        (S.ACCEPTED, S.FAILED),
        (S.DEPLOYING, S.DONE),
        (S.DEPLOYING, S.FAILED),
    ],
)
def test_the_moves_a_delivery_makes(current: S, target: S) -> None:
    assert DELIVERIES.advance(current, target) is target


@pytest.mark.parametrize("end", [S.DONE, S.FAILED, S.IGNORED])
def test_nothing_follows_an_end(end: S) -> None:
    for target in S:
        with pytest.raises(IllegalTransition, match=f"from {end} to {target}"):
            DELIVERIES.advance(end, target)


def test_a_deploying_delivery_does_not_go_back() -> None:
    with pytest.raises(IllegalTransition):
        DELIVERIES.advance(S.DEPLOYING, S.ACCEPTED)
