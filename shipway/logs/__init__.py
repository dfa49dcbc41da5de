"""Logs: lines go to NATS JetStream live and to the store in batches, masked, and are followed
by SSE clients and the `git push` output: stored lines first, then the live tail."""

from shipway.logs.bus import ensure_streams
from shipway.logs.event import LogEvent
from shipway.logs.follow import follow
from shipway.logs.mask import Masker
from shipway.logs.writer import PRIVATE_LINE, LogWriter

__all__ = ["PRIVATE_LINE", "LogEvent", "LogWriter", "Masker", "ensure_streams", "follow"]
