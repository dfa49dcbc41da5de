"""The runtimes a function's code runs in: js (a fresh V8 isolate per call, in a JS host
process) and python (a fresh fork of a warm, sandboxed worker per call). `check` compiles
code on deploy in the runtime it names.

Each runtime is loaded at its first use, so a process that runs no function pays for
neither."""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = {
    "js": "shipway.functions.runtimes.js.process",
    "python": "shipway.functions.runtimes.python.runtime",
}


def check(runtime: str, source: str) -> None:
    """Raise CompileError (a 422, with the line) when SOURCE does not compile."""
    module(runtime).check(source)


def module(runtime: str) -> ModuleType:
    """The runtime's module, loaded on first use."""
    return importlib.import_module(_MODULES[runtime])
