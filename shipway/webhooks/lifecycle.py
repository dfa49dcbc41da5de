"""A webhook delivery's lifecycle, and the one function that moves it along."""

from __future__ import annotations

from enum import StrEnum

from shipway.errors import IllegalTransition


class DeliveryStatus(StrEnum):
    #: Verified and recorded; its work is queued.
    ACCEPTED = "accepted"
    #: Nothing to do: a ping, or an event shipway does not act on (the detail says which).
    IGNORED = "ignored"
    #: Its commit is fetched and its deployment launched.
    DEPLOYING = "deploying"
    DONE = "done"
    FAILED = "failed"


TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.ACCEPTED: frozenset(
        {DeliveryStatus.DEPLOYING, DeliveryStatus.DONE, DeliveryStatus.FAILED}
    ),
    DeliveryStatus.DEPLOYING: frozenset({DeliveryStatus.DONE, DeliveryStatus.FAILED}),
}


def advance(current: DeliveryStatus, target: DeliveryStatus) -> DeliveryStatus:
    """Return TARGET if a delivery may go from CURRENT to it, else raise IllegalTransition."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"a webhook delivery cannot go from {current} to {target}")
    return target
