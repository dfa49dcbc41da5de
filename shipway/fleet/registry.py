"""What the fleet knows of each builder: a record per builder in the NATS KV bucket
`builders`, put by the builder itself at every fleet heartbeat. A builder not heard from
within LOST_AFTER is shown `lost`; one drained or long lost is forgotten after FORGET_AFTER.
A drain request is a key `drain.ID` the builder watches for."""

from __future__ import annotations

import contextlib
import json
import re
import time
import weakref
from dataclasses import asdict, dataclass, field, replace

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from shipway.errors import NotFound, ValidationError
from shipway.fleet.lifecycle import BUILDERS, BuilderState
from shipway.jetstream import key_value, kv_prefix, kv_stream

BUCKET = "builders"
#: Seconds between a builder's fleet heartbeats.
HEARTBEAT_EVERY = 3.0
#: Seconds of silence after which a builder is lost.
LOST_AFTER = 15.0
#: Seconds after which a builder drained or lost is no longer listed.
FORGET_AFTER = 3600.0
_ID = re.compile(r"[A-Za-z0-9_=-]{1,128}")
_DRAIN = "drain."
#: What reading a key that is not there raises: never put, or deleted.
_MISSING = (KeyNotFoundError, KeyDeletedError)


@dataclass(frozen=True)
class BuilderRecord:
    id: str
    pool: str
    labels: dict[str, str] = field(default_factory=dict)
    slots: int = 1
    busy: int = 0
    version: str = ""
    state: str = BuilderState.ACTIVE.value
    started_at: float = 0.0
    heartbeat_at: float = 0.0

    def seen(self, now: float) -> BuilderRecord:
        """This record as of NOW: lost if it has been silent too long."""
        quiet = now - self.heartbeat_at > LOST_AFTER
        if quiet and self.state in (BuilderState.ACTIVE, BuilderState.DRAINING):
            return replace(self, state=BuilderState.LOST.value)
        return self


def builder_id(text: str) -> str:
    """TEXT as a builder id: what KV keys allow, e.g. host-1234."""
    cleaned = re.sub(r"[^A-Za-z0-9_=-]", "-", text)[:128]
    if not _ID.fullmatch(cleaned):
        raise ValidationError(f"not a builder id: {text!r}")
    return cleaned


#: The bucket's handle for each connection: finding it asks the server for the stream's
#: info, a round trip that a builder's heartbeat would otherwise make twice every beat.
_buckets: weakref.WeakKeyDictionary[JetStreamContext, KeyValue] = weakref.WeakKeyDictionary()


async def bucket(js: JetStreamContext) -> KeyValue:
    kv = _buckets.get(js)
    if kv is None:
        kv = _buckets[js] = await key_value(js, BUCKET)
    return kv


async def put(js: JetStreamContext, record: BuilderRecord) -> None:
    kv = await bucket(js)
    await kv.put(record.id, json.dumps(asdict(record)).encode())


async def builders(js: JetStreamContext, now: float | None = None) -> list[BuilderRecord]:
    """Every builder heard from lately, as of NOW; those long gone are forgotten."""
    kv = await bucket(js)
    now = time.time() if now is None else now
    found = []
    # The stream's subjects name the keys: unlike kv.keys(), this leaves no consumer behind
    # on the server (each would count against its consumer limit until it expired).
    prefix = kv_prefix(BUCKET)
    info = await js.stream_info(kv_stream(BUCKET), subjects_filter=prefix + ">")
    for subject in info.state.subjects or {}:
        key = subject.removeprefix(prefix)
        if key.startswith(_DRAIN):
            continue
        try:
            entry = await kv.get(key)
        except _MISSING:
            continue
        if not entry.value:
            continue
        record = BuilderRecord(**json.loads(entry.value)).seen(now)
        if now - record.heartbeat_at > FORGET_AFTER and record.state in (
            BuilderState.DRAINED,
            BuilderState.LOST,
        ):
            await kv.delete(key)
            continue
        found.append(record)
    return sorted(found, key=lambda r: (r.pool, r.id))


async def get(js: JetStreamContext, id: str, now: float | None = None) -> BuilderRecord | None:
    """Builder ID's record as of NOW; None if no such builder is known."""
    if not _ID.fullmatch(id) or id.startswith(_DRAIN):
        return None
    kv = await bucket(js)
    try:
        entry = await kv.get(id)
    except _MISSING:
        return None
    if not entry.value:
        return None
    return BuilderRecord(**json.loads(entry.value)).seen(time.time() if now is None else now)


async def request_drain(js: JetStreamContext, id: str) -> BuilderRecord:
    """Ask builder ID to drain; its record. NotFound if no such builder is known."""
    record = await get(js, id)
    if record is None:
        raise NotFound(f"no builder {id!r}; see shipway builders list")
    kv = await bucket(js)
    await kv.put(_DRAIN + id, b"1")
    return record


async def lost(js: JetStreamContext, id: str) -> None:
    """Builder ID is known to be gone (the process that ran it exited unasked): shown lost at
    once rather than after LOST_AFTER seconds of silence. A builder that drained stays so."""
    record = await get(js, id)
    if record is None or not BUILDERS.allows(BuilderState(record.state), BuilderState.LOST):
        return
    await put(js, replace(record, state=BuilderState.LOST.value))


async def drain_requested(js: JetStreamContext, id: str) -> bool:
    kv = await bucket(js)
    try:
        entry = await kv.get(_DRAIN + id)
    except _MISSING:
        return False
    return bool(entry.value)


async def forget_drain(js: JetStreamContext, id: str) -> None:
    kv = await bucket(js)
    with contextlib.suppress(*_MISSING):
        await kv.delete(_DRAIN + id)
