"""A lifecycle: the states a thing goes through, and the one place it moves from one to the next.

Each lifecycle of shipway (builds, deployments, instances, builders, webhook deliveries,
function runs) is a `str` Enum of its states and a `Lifecycle` of the moves between them;
`advance` is the only way a status changes, so a move the table lacks is an error, never a
silent overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from shipway.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


class Lifecycle(Generic[S]):
    def __init__(
        self, noun: str, moves: Mapping[S, Iterable[S]], *, may_stay: bool = False
    ) -> None:
        """NOUN names the thing in errors ("a build cannot go from …"); MOVES maps each state
        to those that may follow it. With MAY_STAY, moving to the state it is in is allowed."""
        self.noun = noun
        self.moves: dict[S, frozenset[S]] = {state: frozenset(to) for state, to in moves.items()}
        self.may_stay = may_stay

    def advance(self, current: S, target: S) -> S:
        """TARGET, if the lifecycle allows CURRENT → TARGET; else IllegalTransition."""
        if not self.allows(current, target):
            raise IllegalTransition(f"{self.noun} cannot go from {current} to {target}")
        return target

    def allows(self, current: S, target: S) -> bool:
        return (self.may_stay and target == current) or target in self.moves.get(
            current, frozenset()
        )

    def is_terminal(self, state: S) -> bool:
        """True when nothing can follow STATE."""
        return not self.moves.get(state)
