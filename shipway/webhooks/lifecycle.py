"""A webhook delivery's lifecycle: its states, and the moves between them."""

from __future__ import annotations

from enum import StrEnum

from shipway.lifecycle import Lifecycle


class DeliveryStatus(StrEnum):
    #: Verified and recorded; its work is queued.
    ACCEPTED = "accepted"
    #: Nothing to do: a ping, or an event shipway does not act on (the detail says which).
    IGNORED = "ignored"
    #: Its commit is fetched and its deployment launched.
    DEPLOYING = "deploying"
    DONE = "done"
    FAILED = "failed"


DELIVERIES = Lifecycle(
    "a webhook delivery",
    {
        DeliveryStatus.ACCEPTED: {
            DeliveryStatus.DEPLOYING,
            DeliveryStatus.DONE,
            DeliveryStatus.FAILED,
        },
        DeliveryStatus.DEPLOYING: {DeliveryStatus.DONE, DeliveryStatus.FAILED},
    },
)
