"""`shipway builder`: a builder process beside a running control plane.

It finds the control plane through its data dir (the addresses of Temporal and NATS that
`shipway up` wrote there, and its store), builds into the same layer store, and runs until
SIGTERM or SIGINT, or a drain asked through the fleet: then it drains and exits.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import ExitStack, closing
from typing import Any

from shipway import natsauth, subscribers, tracing
from shipway.builder.records.local import LocalRecords
from shipway.builder.records.remote import RelayedLines, RemoteRecords, api_client
from shipway.datadir import DataDir
from shipway.errors import ServiceError, ValidationError
from shipway.fleet.member import Builder, serve
from shipway.links import NatsLink, connect_temporal, temporal_security
from shipway.sandbox import network
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
    server: str | None = None,
    token: str | None = None,
) -> Builder:
    """Run one builder until told to stop; it has drained when this returns.

    Without SERVER it runs beside the control plane whose data dir it shares; with SERVER (a
    control plane's URL, and a platform owner's TOKEN) it asks that for what it needs and
    keeps its own data dir."""
    tracing.setup("builder")
    network.allow_shared(settings.unsafe_shared_network)
    subscribers.record_events()
    with ExitStack() as stack:
        records: LocalRecords | RemoteRecords
        if server is not None:
            if not token:
                raise ValidationError(
                    "--server needs a platform owner's token: --token or SHIPWAY_TOKEN"
                )
            records = stack.enter_context(closing(RemoteRecords(server, token, settings.data_dir)))
            addresses = await asyncio.to_thread(records.connect)
        else:
            records, addresses = _beside(settings, stack)
        return await _serve(settings, records, addresses, pool, labels, slots, on_ready)


def _beside(settings: Settings, stack: ExitStack) -> tuple[LocalRecords, dict[str, Any]]:
    """The records of a builder beside the control plane, and where its Temporal and NATS are.
    It uses that control plane's store and data dir, and relays its log lines through the API
    as a builder on another machine does, so its NATS key needs no permission over any log."""
    data = DataDir(settings.data_dir)
    state, token = data.read_state(), data.read_admin_token()
    if state is None or token is None:
        raise ServiceError(
            f"no shipway is running with data dir {settings.data_dir}; "
            "start it with `shipway up`, give its --data, or give --server URL"
        )
    store = Store(settings.store_url)
    stack.callback(store.close)
    http = stack.enter_context(api_client(state["url"], token))
    return LocalRecords(store, settings.data_dir, RelayedLines(http)), state.get("addresses", {})


async def _serve(
    settings: Settings,
    records: LocalRecords | RemoteRecords,
    addresses: dict[str, Any],
    pool: str,
    labels: dict[str, str],
    slots: int,
    on_ready: Callable[[Builder], None],
) -> Builder:
    temporal = settings.temporal_address or addresses.get("temporal")
    nats_url = settings.nats_url or addresses.get("nats")
    if not temporal or not nats_url:
        raise ServiceError("the control plane did not say where Temporal and NATS are")
    client = await connect_temporal(
        temporal,
        addresses.get("namespace") or settings.temporal_namespace,
        **temporal_security(settings),
    )
    operator = natsauth.external(
        natsauth.Role.BUILDER, settings.nats_credentials, settings.nats_nkey
    )
    link = NatsLink(nats_url, natsauth.builder_access(settings.data_dir, addresses, operator))
    await link.connect()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        builder = Builder(
            client,
            records,
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
