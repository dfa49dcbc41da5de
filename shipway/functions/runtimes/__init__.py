"""The runtimes a function's code runs in: js (a fresh V8 isolate per call) and python (a
fresh fork of a warm, sandboxed worker per call). `check` compiles code on deploy in the
runtime it names; each runtime is imported only when used, as V8 and the sandbox are heavy."""

from __future__ import annotations


def check(runtime: str, source: str) -> None:
    """Raise CompileError (a 422, with the line) when SOURCE does not compile."""
    if runtime == "js":
        from shipway.functions.runtimes.js import runtime as js

        js.check(source)
    else:
        from shipway.functions.runtimes.python import runtime as python

        python.check(source)
