"""The JS host: a process of its own in which V8 runs JS functions, for the process that
started it (see process.py, which speaks for it there).

V8 holds about 40 MiB once set up, and every isolate adds its heap; in a host, that memory
goes when the host does, after a while without calls, and a crash of V8 ends only the host.

It reads requests from stdin and writes answers to the descriptor it was given, one JSON
object per line (its own stdout goes to stderr, so that nothing else can write there):

    in   run {id, source, event, timeout, memory_mb, calls}  one call of a handler
         reply {id, req, ok, text}   the answer to the call's shipway.call REQ: its result as
                                     JSON, or the callee's error message
         cancel {id}                 the caller gave up on the call
         check {id, source}          compile SOURCE as a deploy does
    out  call {id, req, name, params}                the handler's shipway.call(name, params)
         outcome {id, status, result, error, logs, duration}
         checked {id, error: null | {message, line}}

It ends, closing its isolates, when stdin ends: when the process that started it closes it,
or goes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict
from typing import IO, Any

from shipway.functions.outcome import CompileError, Outcome
from shipway.functions.runtimes.js.runtime import JsRuntime, check

log = logging.getLogger(__name__)

#: The longest request line read: a source of at most 1 MiB and its event.
MAX_LINE = 64 << 20


class _Host:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.runtime = JsRuntime()
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.replies: dict[tuple[int, int], asyncio.Future[tuple[bool, str]]] = {}
        self.requests = 0

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def take(self, message: dict[str, Any]) -> None:
        op, run_id = message["op"], int(message["id"])
        if op == "run":
            self._start(run_id, self._run(run_id, message))
        elif op == "check":
            self._start(run_id, self._check(run_id, message["source"]))
        elif op == "reply":
            reply = self.replies.pop((run_id, int(message["req"])), None)
            if reply is not None and not reply.done():
                reply.set_result((bool(message["ok"]), str(message["text"])))
        elif op == "cancel":
            task = self.tasks.get(run_id)
            if task is not None:
                task.cancel()

    def _start(self, run_id: int, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks[run_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(run_id, None))

    async def _run(self, run_id: int, message: dict[str, Any]) -> None:
        async def call(name: str, params: Any) -> Any:
            self.requests += 1
            req = self.requests
            reply = asyncio.get_running_loop().create_future()
            self.replies[(run_id, req)] = reply
            self.send({"op": "call", "id": run_id, "req": req, "name": name, "params": params})
            ok, text = await reply
            if not ok:
                raise Exception(text)  # the callee's error, as the handler sees it
            return json.loads(text)

        try:
            outcome = await self.runtime.run(
                message["source"],
                message["event"],
                timeout=float(message["timeout"]),
                memory_mb=int(message["memory_mb"]),
                call=call if message["calls"] else None,
            )
        except Exception as e:  # a fault of the runtime's, not of the JS: the call fails
            log.exception("a JS call failed in the runtime")
            outcome = Outcome.failed(f"the JS runtime failed: {e}")
        self.send({"op": "outcome", "id": run_id, **asdict(outcome)})

    async def _check(self, run_id: int, source: str) -> None:
        error = None
        try:
            await asyncio.to_thread(check, source)
        except CompileError as e:
            error = {"message": e.message, "line": e.line}
        self.send({"op": "checked", "id": run_id, "error": error})

    async def close(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.runtime.close()


async def serve(out: IO[str]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    host = _Host(out)
    try:
        while line := await reader.readline():
            host.take(json.loads(line))
    finally:
        await host.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="shipway js host: %(message)s")
    out = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    os.dup2(2, 1)
    asyncio.run(serve(out))


if __name__ == "__main__":
    main()
