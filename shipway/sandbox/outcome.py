"""Why a sandboxed command ended, as one sentence naming the limit it hit or how it failed."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from shipway.sandbox.spec import Limits

#: Messages programs print when a limit refuses them something: the only evidence there is
#: for the file size limit when the program ignores SIGXFSZ (Python does), and for memory and
#: processes when no cgroup counts them.
_HINTS = {
    "File too large": "file_size",
    "MemoryError": "memory",
    "Cannot allocate memory": "memory",
    "JavaScript heap out of memory": "memory",
    "Resource temporarily unavailable": "processes",
    "spawn EAGAIN": "processes",
    "Cannot fork": "processes",
}
_KINDS = len(set(_HINTS.values()))


@dataclass
class Evidence:
    """What shipway saw of a run: its exit, its cgroup's counters, telling lines of output."""

    limits: Limits
    #: Whether cgroup counters were kept; then they alone speak for memory and processes.
    counted: bool = False
    timed_out: bool = False
    oom_kills: int = 0
    process_limit_hits: int = 0
    hints: set[str] = field(default_factory=set)

    def read(self, line: str) -> None:
        """Note a line of output that tells of a limit."""
        if len(self.hints) < _KINDS:
            for text, hint in _HINTS.items():
                if text in line:
                    self.hints.add(hint)

    def reason(self, exit_code: int, setup_error: str | None = None) -> str | None:
        """None for a clean exit 0, else what happened, naming the limit when one was hit."""
        limits = self.limits
        memory = f"memory limit of {limits.memory_mb} MiB exceeded"
        processes = f"process limit of {limits.processes} reached"
        file_size = f"file size limit of {limits.file_size_mb} MiB exceeded"
        hit_memory = self.oom_kills > 0 or (not self.counted and "memory" in self.hints)
        hit_processes = self.process_limit_hits > 0 or (
            not self.counted and "processes" in self.hints
        )
        if self.timed_out:
            also = [processes] if hit_processes else []
            return "; ".join([f"killed: timed out after {limits.wall_seconds:g} s", *also])
        if exit_code == 0:
            return None
        if setup_error:
            return setup_error
        if self.oom_kills:
            return f"killed: {memory}"
        if hit_processes:
            return processes
        if exit_code == 128 + signal.SIGXFSZ or "file_size" in self.hints:
            return file_size
        if hit_memory:
            return memory
        return describe_exit(exit_code)


def describe_exit(exit_code: int) -> str:
    """ "exited with code N", naming the signal when the code says the command was killed."""
    if exit_code > 128:
        try:
            name = signal.Signals(exit_code - 128).name
        except ValueError:
            pass
        else:
            return f"killed by {name} (exit code {exit_code})"
    return f"exited with code {exit_code}"
