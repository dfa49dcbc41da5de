import json
import socket
from pathlib import Path

import pytest

from shipway.embedded import ports
from shipway.errors import PortInUse


def test_allocation_is_stable_and_avoids_taken_ports(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    first = ports.allocate(path, ["temporal", "nats"], avoid=set())
    assert len(set(first.values())) == 2
    assert ports.allocate(path, ["temporal", "nats"], avoid=set()) == first
    assert json.loads(path.read_text()) == first


def test_a_taken_port_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        path.write_text(json.dumps({"nats": busy}))
        chosen = ports.allocate(path, ["nats"], avoid=set())
    assert chosen["nats"] != busy


def test_binding_a_busy_control_port_names_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {busy} is already in use"):
            ports.bind_listener("127.0.0.1", busy)


def test_the_control_listener_disables_nagle() -> None:
    listener = ports.bind_listener("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()


def test_ports_another_data_dir_holds_are_not_taken_while_it_restarts(tmp_path: Path) -> None:
    """Its servers are down for a moment, their ports free; its node still expects them."""
    registry = tmp_path / "registry.json"
    mine, theirs = tmp_path / "mine" / "ports.json", tmp_path / "theirs" / "ports.json"
    held = ports.allocate(theirs, ["temporal", "nats"], avoid=set(), registry=registry)
    chosen = ports.allocate(mine, ["temporal", "nats"], avoid=set(), registry=registry)
    assert not set(chosen.values()) & set(held.values())
    # Their restart finds its ports again; a data dir that is gone holds nothing.
    assert ports.allocate(theirs, ["temporal", "nats"], avoid=set(), registry=registry) == held
    theirs.unlink()
    again = ports.allocate(mine, ["temporal", "nats", "x"], avoid=set(), registry=registry)
    assert {again["temporal"], again["nats"]} == set(chosen.values())
    assert json.loads(registry.read_text()) == {
        str(port): str(mine.resolve()) for port in again.values()
    }
