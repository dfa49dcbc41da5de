"""`shipway builder`: a builder process beside a running control plane.

It finds the control plane through its data dir (the addresses of Temporal and NATS that
`shipway up` wrote there, and its store), builds into the same layer store, and runs until
SIGTERM or SIGINT, or a drain asked through the fleet: then it drains and exits.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from shipway.connections import NatsLink, connect_temporal
from shipway.datadir import DataDir
from shipway.errors import ServiceError, ValidationError
from shipway.fleet.builder import Builder, serve
from shipway.settings import Settings
from shipway.store import Store


def parse_labels(raw: str) -> dict[str, str]:
    """`k=v,k2=v2` as a mapping."""
    labels = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"labels are k=v pairs separated by commas; got {pair!r}")
        labels[key.strip()] = value.strip()
    return labels


async def run_builder(
    settings: Settings,
    *,
    pool: str,
    labels: dict[str, str],
    slots: int,
    on_ready: Callable[[Builder], None],
) -> Builder:
    """Run one builder until told to stop; it has drained when this returns."""
    state = DataDir(settings.data_dir).read_state()
    if state is None:
        raise ServiceError(
            f"no shipway is running with data dir {settings.data_dir}; "
            "start it with `shipway up`, or give its --data"
        )
    addresses = state.get("addresses", {})
    temporal = settings.temporal_address or addresses.get("temporal")
    nats_url = settings.nats_url or addresses.get("nats")
    if not temporal or not nats_url:
        raise ServiceError("the running shipway did not say where Temporal and NATS are")
    client = await connect_temporal(temporal, settings.temporal_namespace)
    link = NatsLink(nats_url)
    await link.connect()
    store = Store(settings.store_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        builder = Builder(
            client,
            store,
            settings.data_dir,
            link.js,
            pool=pool,
            labels=labels,
            slots=slots,
            graceful=float(settings.build_timeout + 60),
        )
        builder.start()
        on_ready(builder)
        await serve(builder, stop)
        return builder
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await link.close()
        store.close()
