"""What a log reader sees: a line, the end of the log, or a pause long enough for a keep-alive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class LogEvent:
    """One step of a followed log. SEQ is the line's number (for "end", the last line's)."""

    type: Literal["line", "end", "idle"]
    seq: int
    line: str = ""
    status: str | None = None

    @classmethod
    def of_line(cls, seq: int, line: str) -> LogEvent:
        return cls("line", seq, line)

    @classmethod
    def end(cls, seq: int, status: str) -> LogEvent:
        return cls("end", seq, status=status)
