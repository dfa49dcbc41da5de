"""What one function call comes back with, whichever runtime ran it, and the lifecycle of its
run: a run is recorded as it starts, running, and once more as it ends, so those are its only
moves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shipway.errors import ValidationError
from shipway.lifecycle import Lifecycle

#: How a handler calls another function (`shipway.call(name, params)`): the result, or an
#: exception whose message the caller's handler sees as its error.
Call = Callable[[str, Any], Awaitable[Any]]


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


RUNS = Lifecycle(
    "a function run",
    {RunStatus.RUNNING: {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT}},
)


@dataclass
class Outcome:
    """SUCCEEDED with a JSON-able RESULT, or FAILED / TIMED_OUT with ERROR
    {"message": str, "stack": str | None}. LOGS are the handler's console lines, in order."""

    status: RunStatus
    result: Any = None
    error: dict[str, Any] | None = None
    logs: list[str] = field(default_factory=list)
    duration: float = 0.0

    @classmethod
    def failed(cls, message: str, stack: str | None = None) -> Outcome:
        """FAILED with MESSAGE (and the STACK of what threw, when there is one)."""
        return cls(RunStatus.FAILED, error={"message": message, "stack": stack})


class CompileError(ValidationError):
    """Raised on deploy when the code does not compile; LINE is 1-based, when known."""

    code = "compile_error"

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, details={"line": line})
        self.line = line
