"""A builder's lifecycle: a drain asked twice is one drain; a drained builder is done."""

from __future__ import annotations

import pytest

from shipway.errors import IllegalTransition
from shipway.fleet.lifecycle import BUILDERS, BuilderState

B = BuilderState


def test_a_builder_drains_once_however_often_asked() -> None:
    state = BUILDERS.advance(B.ACTIVE, B.DRAINING)
    assert BUILDERS.advance(state, B.DRAINING) is B.DRAINING
    assert BUILDERS.advance(state, B.DRAINED) is B.DRAINED


def test_a_lost_builder_comes_back_and_a_drained_one_does_not() -> None:
    assert BUILDERS.advance(B.LOST, B.ACTIVE) is B.ACTIVE
    assert BUILDERS.is_terminal(B.DRAINED)
    with pytest.raises(IllegalTransition, match="a builder cannot go from drained to active"):
        BUILDERS.advance(B.DRAINED, B.ACTIVE)
