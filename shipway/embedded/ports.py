"""Loopback ports for the embedded servers: stable across restarts, free at start."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from shipway.errors import PortInUse

log = logging.getLogger(__name__)

#: The port each embedded server prefers when it is free.
PREFERRED = {"temporal": 7233, "temporal_ui": 8233, "temporal_http": 7243, "nats": 4222}


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on PORT now. SO_REUSEADDR, as the servers set it: the
    connections a killed server leaves lingering (clients that outlived it, such as the node)
    do not keep its port from its successor."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            # With SO_REUSEADDR on both, bind succeeds beside a live listener; listen does not.
            sock.listen(1)
        except OSError:
            return False
    return True


#: The state of a listening socket in /proc/PID/net/tcp.
_LISTEN = "0A"


def tcp_sockets(pid: int) -> list[tuple[int, str]]:
    """The TCP sockets process PID holds, in its own network namespace: (local port, state as
    /proc/net/tcp writes it, "0A" listening); none when the process is gone."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    held = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    found = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as rows:
            next(rows)  # the header
            for row in rows:
                fields = row.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if f"socket:[{inode}]" in held:
                    found.append((int(local.rpartition(":")[2], 16), state))
    return found


def listening(pid: int, port: int) -> bool:
    """Whether process PID itself listens on TCP PORT: a port that answers may be another
    program's, such as an inner port the embedded Temporal picked before its neighbour bound it."""
    return (port, _LISTEN) in tcp_sockets(pid)


def any_free(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind the control port now, so a clash is found before anything is spawned."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP lets asyncio turn on TCP_NODELAY for each accepted connection;
    # without it, keep-alive requests stall ~40 ms on Nagle plus delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise PortInUse(
            f"port {port} is already in use on {host}; stop what is using it "
            f"or start shipway with --port N",
            details={"port": port},
        ) from e
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def allocate(
    path: Path, names: list[str], *, avoid: set[int], registry: Path | None = None
) -> dict[str, int]:
    """Ports for NAMES: last time's if still free, else the preferred one, else any free one.

    A port another data dir on this machine holds for its own servers (its PATH still names
    it, in the machine's REGISTRY) is never taken, free as it may be while that shipway
    restarts: its node keeps talking to the servers at those addresses. Call it under
    `claimed()`."""
    registry = registry or _REGISTRY
    path = path.resolve()
    saved = _read(path)
    elsewhere = _held_elsewhere(registry, path)
    chosen: dict[str, int] = {}
    taken = set(avoid) | set(elsewhere)

    def usable(port: int) -> bool:
        return port not in taken and is_free(port)

    for name in names:
        for candidate in (saved.get(name), PREFERRED.get(name)):
            if candidate is not None and usable(candidate):
                chosen[name] = candidate
                break
        else:
            port = any_free()
            while not usable(port):
                port = any_free()
            chosen[name] = port
        taken.add(chosen[name])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chosen, indent=2))
    owners = {**elsewhere, **{port: path for port in chosen.values()}}
    try:
        registry.write_text(json.dumps({str(port): str(owner) for port, owner in owners.items()}))
    except OSError as e:  # another user's registry: our ports are then ours alone to keep
        log.warning("cannot record the embedded servers' ports in %s: %s", registry, e)
    return chosen


#: Which ports files (data dirs) hold which ports on this machine.
_REGISTRY = Path(tempfile.gettempdir()) / "shipway-ports.json"


def _read(path: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _owners(registry: Path) -> dict[int, Path]:
    try:
        return {int(k): Path(v) for k, v in json.loads(registry.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _held_elsewhere(registry: Path, path: Path) -> dict[int, Path]:
    """The ports another ports file still names, reserved for that data dir's servers (a data
    dir removed, or given other ports, holds them no more)."""
    return {
        port: owner
        for port, owner in _owners(registry).items()
        if owner != path and port in _read(owner).values()
    }


@asynccontextmanager
async def claimed() -> AsyncIterator[None]:
    """Held from choosing ports until the servers listen on them: two shipways starting at
    once on one machine would otherwise both find a port free, and both take it."""
    with open(Path(tempfile.gettempdir()) / "shipway-ports.lock", "a") as handle:
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        yield  # closing the file lets the lock go
