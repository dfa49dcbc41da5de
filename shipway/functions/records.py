"""The records of function runs, written behind the calls.

A call takes its run id from a block reserved ahead of need, so it never waits for a write
before it runs. Its record (as it starts, then as it ends) is queued, and one writer writes
what is queued in one transaction: a call that ends before its start was written costs a
single insert, and many concurrent calls share a commit. One writer means a run's writes
happen in order. `settle` waits for everything queued so far; what reads runs calls it
first, so a caller always finds its own runs.

A process that dies loses the records it had not written yet: a few milliseconds' worth.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, update

from shipway.functions.outcome import RUNS, Outcome, RunStatus
from shipway.store import Store, ids
from shipway.store.tables import FunctionRun
from shipway.store.types import utcnow

log = logging.getLogger(__name__)

#: Run ids reserved at a time.
BLOCK = 256


@dataclass
class _Record:
    #: Whether the run's row is still to be inserted (else: updated).
    new: bool
    values: dict[str, Any]


class RunRecords:
    def __init__(self, store: Store, *, block: int = BLOCK) -> None:
        self.store = store
        self.block = block
        self._ids: Iterator[int] = iter(())
        self._queued: dict[int, _Record] = {}
        self._writer: asyncio.Task[None] | None = None
        #: Done once the records queued now are written; done once the batch in flight is.
        self._next: asyncio.Future[None] | None = None
        self._writing: asyncio.Future[None] | None = None

    async def start(
        self, function_id: int, version: int, trigger: str, params: Any, parent_id: int | None
    ) -> int:
        """A new run's id; its record, status running, is queued."""
        run_id = next(self._ids, None)
        if run_id is None:
            block = await asyncio.to_thread(self._reserve)
            run_id = block[0]
            self._ids = itertools.chain(self._ids, block[1:])
        row = {
            "id": run_id,
            "function_id": function_id,
            "version": version,
            "trigger": trigger,
            "parent_id": parent_id,
            "params": params,
            "status": RunStatus.RUNNING.value,
            "result": None,
            "error": None,
            "duration": None,
            "created_at": utcnow(),
            "finished_at": None,
        }
        self._queue(run_id, row, new=True)
        return run_id

    def end(self, run_id: int, outcome: Outcome) -> None:
        """Queue how run RUN_ID ended; IllegalTransition if OUTCOME is no end of a run."""
        ended = {
            "status": RUNS.advance(RunStatus.RUNNING, outcome.status).value,
            "result": outcome.result,
            "error": outcome.error,
            "duration": round(outcome.duration, 6),
            "finished_at": utcnow(),
        }
        self._queue(run_id, ended, new=False)

    async def settle(self) -> None:
        """Wait until every record queued so far is written (not those queued meanwhile)."""
        batch = self._next if self._queued else self._writing
        if batch is not None and not batch.done():
            await asyncio.shield(batch)

    def _queue(self, run_id: int, values: dict[str, Any], *, new: bool) -> None:
        queued = self._queued.get(run_id)
        if queued is None:
            self._queued[run_id] = _Record(new, values)
        else:
            queued.values.update(values)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="function-run-records")

    async def _write_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, {}
            self._writing, self._next = self._next, None
            try:
                await asyncio.to_thread(self._write, batch)
            finally:
                if self._writing is not None:
                    self._writing.set_result(None)

    def _reserve(self) -> range:
        with self.store.transaction() as session:
            return ids.reserve(session, FunctionRun.__tablename__, self.block)

    def _write(self, batch: dict[int, _Record]) -> None:
        """BATCH in one transaction; if that fails (a run of a function deleted meanwhile),
        each record on its own, so that one bad record loses no other."""
        try:
            self._write_records(list(batch.items()))
            return
        except Exception as e:
            if len(batch) == 1:
                log.warning("cannot record run %d: %s", next(iter(batch)), e)
                return
        for item in batch.items():
            try:
                self._write_records([item])
            except Exception as e:
                log.warning("cannot record run %d: %s", item[0], e)

    def _write_records(self, records: list[tuple[int, _Record]]) -> None:
        rows = [record.values for _, record in records if record.new]
        changes = [{"id": run_id, **record.values} for run_id, record in records if not record.new]
        with self.store.transaction() as session:
            if rows:
                session.execute(insert(FunctionRun), rows)
            if changes:
                session.execute(update(FunctionRun), changes)
