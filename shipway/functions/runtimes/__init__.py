"""The runtimes a function's code runs in: js (a fresh V8 isolate per call) and python (a
fresh fork of a warm, sandboxed worker per call). `check` compiles code on deploy in the
runtime it names.

Each runtime is loaded at its first use, so a process that runs no function pays for
neither (V8 alone holds about 40 MiB). V8 must be set up by the main thread: code about to
check JS in another thread calls `prepare` from the main thread first."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

_MODULES = {
    "js": "shipway.functions.runtimes.js.runtime",
    "python": "shipway.functions.runtimes.python.runtime",
}


def check(runtime: str, source: str) -> None:
    """Raise CompileError (a 422, with the line) when SOURCE does not compile."""
    module(runtime).check(source)


def prepare(runtimes: Iterable[str]) -> None:
    """Load the RUNTIMES named, from the main thread (a no-op for those already loaded)."""
    for runtime in set(runtimes):
        module(runtime)


def module(runtime: str) -> ModuleType:
    """The runtime's module, loaded on first use: js's first load must be by the main
    thread (it raises ImportError on any other)."""
    return importlib.import_module(_MODULES[runtime])
