"""The embedded servers started together, on ports chosen for them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from shipway.embedded import ports
from shipway.embedded.process import ProcessSpec, SupervisedProcess
from shipway.errors import PortInUse

log = logging.getLogger(__name__)


async def start_on_free_ports(
    choose: Callable[[], dict[str, int]],
    specs: Callable[[dict[str, int]], list[ProcessSpec]],
    tries: int = 3,
) -> tuple[dict[str, int], list[SupervisedProcess]]:
    """Start the servers SPECS makes for the ports CHOOSE picks, all at once.

    A port free when chosen can be taken before its server binds it, and the embedded
    Temporal also picks free ports of its own for its inner services. A server that exits
    because its address is in use has them all stopped and started again on ports chosen
    anew, up to TRIES times. Any other failure stops them all and is raised."""
    for attempt in range(1, tries + 1):
        async with ports.claimed():
            chosen = choose()
            processes = [SupervisedProcess(spec) for spec in specs(chosen)]
            try:
                results = await asyncio.gather(
                    *(proc.start() for proc in processes), return_exceptions=True
                )
            except asyncio.CancelledError:  # shipway is stopping: none is left running
                await _stop(processes)
                raise
        failed = [result for result in results if isinstance(result, BaseException)]
        if not failed:
            return chosen, processes
        await _stop(processes)
        if attempt == tries or not all(isinstance(e, PortInUse) for e in failed):
            raise failed[0]
        log.warning("%s; starting again", failed[0])
    raise AssertionError("unreachable")


async def _stop(processes: list[SupervisedProcess]) -> None:
    await asyncio.gather(*(proc.stop() for proc in processes))
