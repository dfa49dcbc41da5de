"""The runtimes a function's code runs in: js (a fresh V8 isolate per call) and python (a
fresh fork of a warm, sandboxed worker per call). `check` compiles code on deploy in the
runtime it names. The python runtime is imported only when used, as its sandbox is heavy;
the js one is imported with this package, as V8 must be set up by the main thread."""

from __future__ import annotations

from shipway.functions.runtimes.js import runtime as js


def check(runtime: str, source: str) -> None:
    """Raise CompileError (a 422, with the line) when SOURCE does not compile."""
    if runtime == "js":
        js.check(source)
    else:
        from shipway.functions.runtimes.python import runtime as python

        python.check(source)
