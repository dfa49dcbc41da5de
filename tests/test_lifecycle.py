"""The generic lifecycle every status enum moves through."""

from __future__ import annotations

from enum import StrEnum

import pytest

from shipway.errors import IllegalTransition
from shipway.lifecycle import Lifecycle


class Light(StrEnum):
    RED = "red"
    GREEN = "green"
    AMBER = "amber"
    OFF = "off"


LIGHTS = Lifecycle(
    "a light",
    {Light.RED: {Light.GREEN, Light.OFF}, Light.GREEN: {Light.AMBER}, Light.AMBER: {Light.RED}},
)


def test_a_move_in_the_table_returns_the_target() -> None:
    assert LIGHTS.advance(Light.RED, Light.GREEN) is Light.GREEN
    assert LIGHTS.allows(Light.AMBER, Light.RED)


def test_a_move_not_in_the_table_names_the_thing_and_both_states() -> None:
    with pytest.raises(IllegalTransition, match=r"^a light cannot go from green to red$"):
        LIGHTS.advance(Light.GREEN, Light.RED)
    # Staying put is a move like any other unless the lifecycle allows it.
    assert not LIGHTS.allows(Light.RED, Light.RED)
    staying = Lifecycle("a light", {Light.RED: {Light.GREEN}}, may_stay=True)
    assert staying.advance(Light.RED, Light.RED) is Light.RED
    assert staying.advance(Light.OFF, Light.OFF) is Light.OFF


def test_a_state_with_no_moves_is_terminal() -> None:
    assert [s for s in Light if LIGHTS.is_terminal(s)] == [Light.OFF]
    with pytest.raises(IllegalTransition):
        LIGHTS.advance(Light.OFF, Light.RED)
