"""The builders `shipway up` runs beside itself: the autoscaler tells them from the pool's
other builders by the fleet id each process gives itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shipway.fleet.local import LocalBuilders

SELF_ID = (
    "from shipway.builder.activity import builder_name\n"
    "from shipway.fleet.registry import builder_id\n"
    "print(builder_id(builder_name()))\n"
)


def test_a_builder_process_is_known_by_the_id_it_gives_itself() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SELF_ID],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    said, _ = process.communicate(timeout=60)
    assert said.strip() == LocalBuilders.builder_id(process)  # type: ignore[arg-type]
