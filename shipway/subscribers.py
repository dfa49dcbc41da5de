"""What a shipway process subscribes to the domain's events (shipway.events) when it starts.

Every process that changes the store records each event in the audit trail, inside the
emitting transaction. The control plane also publishes each committed event on NATS
(shipway.eventbus), where waiting pushes, webhook deliveries and the autoscaler hear it, and
counts the builds and deployments that end in its metrics (shipway.metrics).
"""

from __future__ import annotations

import asyncio

from shipway import events, metrics
from shipway.audit.record import record
from shipway.eventbus import Publisher
from shipway.links import NatsLink


def record_events() -> None:
    """Keep an audit entry of every event (once, however often called)."""
    events.subscribe(record)


def measure_events() -> None:
    """Count each committed end of a build or a deployment (once, however often called)."""
    events.listen(metrics.hear)


def publish_events(link: NatsLink) -> Publisher:
    """Publish every committed event on LINK until `events.unlisten` of what this returns."""
    publisher = Publisher(link, asyncio.get_running_loop())
    events.listen(publisher)
    return publisher
