"""Compile a function's source on deploy, in the runtime it names, without running it."""

from __future__ import annotations


def check(runtime: str, source: str) -> None:
    """Raise CompileError (a 422, with the line) when SOURCE does not compile."""
    if runtime == "js":
        from shipway.functions import js

        js.check(source)
    else:
        from shipway.functions import python

        python.check(source)
