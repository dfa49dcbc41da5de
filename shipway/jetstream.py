"""JetStream streams and KV buckets that shipway makes itself, safe to ask for at every start."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError, BucketNotFoundError
from nats.js.kv import KeyValue

_STREAM_NAME_IN_USE = 10058


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one to CONFIG."""
    try:
        await js.add_stream(config)
    except BadRequestError as e:
        if e.err_code != _STREAM_NAME_IN_USE:
            raise
        await js.update_stream(config)


def kv_stream(bucket: str) -> str:
    """The name of the stream that holds BUCKET."""
    return f"KV_{bucket}"


def kv_prefix(bucket: str) -> str:
    """What the subject of each of BUCKET's keys starts with (the key follows it)."""
    return f"$KV.{bucket}."


async def key_value(js: JetStreamContext, bucket: str) -> KeyValue:
    """The KV bucket, created with history 1 (the current value of each key) on first use."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=bucket, history=1)
