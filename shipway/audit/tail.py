"""Following the activity log live: the entries matching a search as they are recorded, as
server-sent events, for the API's tail and the dashboard's activity page alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from shipway.audit import search
from shipway.errors import ShipwayError
from shipway.logs import sse
from shipway.store import Store
from shipway.store.tables import AuditEntry

#: Seconds between looks for new entries, and between keep-alives when there are none.
EVERY = 0.5
KEEP_ALIVE_EVERY = 15.0
#: Ids below the highest sent that are looked at again: on PostgreSQL, transactions commit
#: out of id order, so an entry can appear after one with a higher id.
LOOKBACK = 100


def last_id(store: Store) -> int:
    """Where a tail that starts now starts after."""
    with store.transaction() as session:
        return search.last_id(session)


async def follow(
    store: Store, query: search.Query, start: int, encode: Callable[[AuditEntry], str]
) -> AsyncIterator[str]:
    """New entries matching QUERY with ids above START, each an `entry` event whose data is
    ENCODE(entry) (called while the entry is loaded), for as long as the client stays."""
    sent: dict[int, None] = {}
    highest, quiet = start, 0.0

    def look() -> list[tuple[int, str]]:
        with store.transaction() as session:
            after = max(start, highest - LOOKBACK)
            found = search.newer(session, query, after)
            return [(e.id, encode(e)) for e in found if e.id not in sent]

    while True:
        try:
            found = await asyncio.to_thread(look)
        except ShipwayError as e:
            yield sse.encode("error", json.dumps({"code": e.code, "message": e.message}))
            return
        for entry_id, data in found:
            sent[entry_id] = None
            highest = max(highest, entry_id)
            yield sse.encode("entry", data, id=entry_id)
        while len(sent) > 4 * LOOKBACK:
            del sent[next(iter(sent))]
        quiet = 0.0 if found else quiet + EVERY
        if quiet >= KEEP_ALIVE_EVERY:
            quiet = 0.0
            yield sse.KEEP_ALIVE
        await asyncio.sleep(EVERY)
