"""The embedded NATS refuses anonymous clients and wrong keys, and a builder's key opens only
its fleet record: never the `functions` bucket, any log (build logs go through the API), or
the audit stream. A node's opens app logs only."""

from __future__ import annotations

import logging
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nkeys
import pytest
from nats.aio.client import Client as NatsClient

from shipway import eventbus, natsauth
from shipway.audit.consumer import subject as audit_subject
from shipway.errors import ServiceError
from shipway.fleet import registry
from shipway.functions.registry import BUCKET as FUNCTIONS
from shipway.jetstream import key_value
from shipway.links import NatsLink
from shipway.logs import bus, ensure_streams
from shipway.natsauth import Role
from tests.servers import Servers

SECRET = b"function code and its secrets"
#: Seconds a refused request waits for the answer that never comes.
REFUSED = 0.5


@pytest.fixture
async def control(servers: Servers) -> AsyncIterator[NatsLink]:
    link = servers.link()
    await link.connect()
    await ensure_streams(link.js)
    kv = await key_value(link.js, FUNCTIONS)
    await kv.put("acme.greet", SECRET)
    await registry.bucket(link.js)
    await bus.publish_line(link.js, "app", 41, 1, "another tenant's app log")
    yield link
    await link.close()


@pytest.fixture
async def builder(servers: Servers, control: NatsLink) -> AsyncIterator[NatsLink]:
    link = servers.link(Role.BUILDER)
    await link.connect()
    yield link
    await link.close()


def test_keys_are_private_to_their_owner(servers: Servers) -> None:
    for role in Role:
        mode = stat.S_IMODE(natsauth.seed_file(servers.root, role).stat().st_mode)
        assert mode == 0o600, (role, oct(mode))
    config = (servers.root / "nats" / "nats.conf").read_text()
    assert stat.S_IMODE((servers.root / "nats" / "nats.conf").stat().st_mode) == 0o600
    # The server holds public keys only: no seed is in its configuration.
    for role in Role:
        seed = natsauth.seed_file(servers.root, role).read_text().strip()
        assert seed not in config
        assert f"nkey: {nkeys.from_seed(bytearray(seed.encode())).public_key.decode()}" in config


async def test_an_anonymous_client_is_refused(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="shipway.links"),
        pytest.raises(ServiceError, match=r"refused the credentials.*Authorization"),
    ):
        await NatsLink(servers.nats_url).connect(timeout=10)
    assert any("refused shipway's credentials" in r.getMessage() for r in caplog.records)
    raw = NatsClient()
    with pytest.raises(Exception, match="Authorization"):
        await raw.connect(servers.nats_url, allow_reconnect=False, connect_timeout=2)


async def test_a_wrong_key_is_refused(servers: Servers, tmp_path: Path) -> None:
    forged = tmp_path / "forged.nk"
    forged.write_bytes(nkeys.encode_seed(b"\x01" * 32, nkeys.PREFIX_BYTE_USER))
    access = natsauth.Access(role=Role.CONTROL, nkey_seed_file=forged)
    with pytest.raises(ServiceError, match="refused the credentials"):
        await NatsLink(servers.nats_url, access).connect(timeout=10)


async def test_a_builder_does_its_work(builder: NatsLink) -> None:
    await registry.put(builder.js, registry.BuilderRecord(id="b-1", pool="default"))
    assert not await registry.drain_requested(builder.js, "b-1")


async def test_a_node_writes_app_logs_only(servers: Servers, control: NatsLink) -> None:
    node = servers.link(Role.NODE)
    await node.connect()
    try:
        await bus.publish_line(node.js, "app", 42, 1, "listening on 5000")
        assert await bus.last_published(node.js, "app", 42) == 1
        await _refused(lambda: node.js.publish(bus.subject("build", 7), b"x", timeout=REFUSED))
        await _refused(lambda: node.nc.jetstream(timeout=REFUSED).key_value(FUNCTIONS))
    finally:
        await node.close()


async def test_a_node_hears_of_deployments_and_of_no_other_event(
    servers: Servers, control: NatsLink
) -> None:
    node = servers.link(Role.NODE)
    await node.connect()
    try:
        deployments = await node.nc.subscribe(eventbus.subject("deployment", 12))
        others = await node.nc.subscribe(eventbus.subject("app", 3))
        await node.nc.flush()
        await control.nc.publish(eventbus.subject("app", 3, "app.created"), b"{}")
        await control.nc.publish(eventbus.subject("deployment", 12, "deployment.deploying"), b"{}")
        heard = await deployments.next_msg(timeout=10)
        assert heard.subject == "events.deployment.12.deployment.deploying"
        with pytest.raises(Exception, match=r"timeout|Timeout"):
            await others.next_msg(timeout=1)
    finally:
        await node.close()


async def _refused(attempt: Callable[[], Awaitable[Any]]) -> None:
    """ATTEMPT gets nothing back: NATS drops what a client may not do, so it times out."""
    with pytest.raises(Exception) as caught:
        await attempt()
    assert "timeout" in type(caught.value).__name__.lower() or "permission" in str(caught.value)


@pytest.mark.parametrize(
    "what",
    [
        "functions bucket info",
        "functions key read",
        "functions key write",
        "app log read",
        "app log write",
        "build log read",
        "build log write",
        "audit publish",
        "stream delete",
        "control's replies",
    ],
)
async def test_a_builder_is_refused(builder: NatsLink, control: NatsLink, what: str) -> None:
    # NATS drops what a client may not do: it shows as a wait that times out, kept short.
    js, nc = builder.nc.jetstream(timeout=REFUSED), builder.nc
    attempts: dict[str, Callable[[], Awaitable[Any]]] = {
        "functions bucket info": lambda: js.key_value(FUNCTIONS),
        "functions key read": lambda: nc.request(
            f"$JS.API.DIRECT.GET.KV_{FUNCTIONS}.$KV.{FUNCTIONS}.acme.greet", b"", timeout=REFUSED
        ),
        "functions key write": lambda: js.publish(
            f"$KV.{FUNCTIONS}.acme.greet", b"x", timeout=REFUSED
        ),
        "app log read": lambda: bus.last_published(js, "app", 41),
        "app log write": lambda: js.publish(bus.subject("app", 41), b"x", timeout=REFUSED),
        "build log read": lambda: bus.last_published(js, "build", 6),
        "build log write": lambda: js.publish(bus.subject("build", 6), b"x", timeout=REFUSED),
        "audit publish": lambda: js.publish(audit_subject("acme"), b"{}", timeout=REFUSED),
        "stream delete": lambda: js.delete_stream(bus.STREAM),
        "control's replies": lambda: nc.subscribe(natsauth.INBOX[Role.CONTROL] + ".>"),
    }
    if what == "control's replies":
        sub = await attempts[what]()
        # The server refuses the subscription: a reply to the control plane never arrives.
        kv = await key_value(control.js, FUNCTIONS)
        assert (await kv.get("acme.greet")).value == SECRET
        with pytest.raises(Exception, match=r"timeout|Timeout"):
            await sub.next_msg(timeout=1)
        return
    await _refused(attempts[what])
    # Nothing was changed on the way.
    kv = await key_value(control.js, FUNCTIONS)
    assert (await kv.get("acme.greet")).value == SECRET
    assert await bus.last_published(control.js, "app", 41) == 1


def test_every_builder_process_takes_the_builder_key(servers: Servers, tmp_path: Path) -> None:
    """Beside the control plane (sharing its data dir) and on another machine (handed the
    seed by the API) alike; the operator's own files win."""
    none = natsauth.Access(role=Role.BUILDER)
    beside = natsauth.builder_access(servers.root, {}, none)
    assert beside == natsauth.from_data_dir(servers.root, Role.BUILDER)
    seed = natsauth.seed_file(servers.root, Role.BUILDER).read_text()
    elsewhere = natsauth.builder_access(tmp_path, {"nats_nkey_seed": seed}, none)
    assert elsewhere.nkey_seed_file == natsauth.seed_file(tmp_path, Role.BUILDER)
    assert elsewhere.nkey_seed_file.read_text() == seed
    operator = natsauth.Access(role=Role.BUILDER, credentials_file=tmp_path / "ops.creds")
    assert natsauth.builder_access(servers.root, {}, operator) == operator
