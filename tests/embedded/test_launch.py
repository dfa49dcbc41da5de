import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.embedded import launch, ports
from shipway.embedded import nats as embedded_nats
from shipway.embedded import temporal as embedded_temporal
from shipway.embedded.process import ProcessSpec, ProcessState, SupervisedProcess
from shipway.errors import PortInUse, ServiceError
from tests.helpers import until

pytestmark = pytest.mark.integration


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def temporal_spec(data_dir: Path, chosen: dict[str, int]) -> list[ProcessSpec]:
    return [
        embedded_temporal.spec(
            data_dir, chosen["temporal"], chosen["temporal_ui"], chosen["temporal_http"]
        )
    ]


def free_ports(*names: str) -> dict[str, int]:
    return {name: ports.any_free() for name in names}


async def test_a_server_whose_port_is_taken_says_so_in_its_own_words(
    tmp_path: Path, held_port: int
) -> None:
    chosen = {**free_ports("temporal", "temporal_ui"), "temporal_http": held_port}
    with pytest.raises(PortInUse, match=f"temporal exited .*:{held_port}: bind: address"):
        await SupervisedProcess(temporal_spec(tmp_path, chosen)[0]).start()


async def test_a_port_another_program_answers_on_is_not_taken_for_the_server_ready(
    tmp_path: Path, held_port: int
) -> None:
    """The port answers at once, but not from NATS: NATS exits with the address in use."""
    with pytest.raises(PortInUse, match=f"nats exited .*:{held_port}.*address already in use"):
        await SupervisedProcess(embedded_nats.spec(tmp_path, held_port)).start()


def test_listening_is_the_listener_itself(held_port: int) -> None:
    assert ports.listening(os.getpid(), held_port)
    assert not ports.listening(os.getpid(), ports.any_free())
    assert not ports.listening(1, held_port), "another process does not hold it"


async def test_servers_start_again_on_other_ports_when_one_was_taken(
    tmp_path: Path, held_port: int
) -> None:
    choices = [
        {**free_ports("temporal", "temporal_ui"), "temporal_http": held_port},
        free_ports("temporal", "temporal_ui", "temporal_http"),
    ]
    tried: list[dict[str, int]] = []

    def choose() -> dict[str, int]:
        tried.append(choices[len(tried)])
        return tried[-1]

    chosen, processes = await launch.start_on_free_ports(
        choose, lambda chosen: temporal_spec(tmp_path, chosen)
    )
    try:
        assert tried == choices and chosen == choices[1]
        assert [proc.state for proc in processes] == [ProcessState.RUNNING]
        # Temporal is ready once its gRPC port answers; its HTTP port may be bound a moment later.
        await until(lambda: not ports.is_free(chosen["temporal_http"]))
    finally:
        for proc in processes:
            await proc.stop()


async def test_a_server_failing_for_another_reason_is_not_started_again(tmp_path: Path) -> None:
    calls = []

    def choose() -> dict[str, int]:
        calls.append(1)
        return free_ports("nats")

    def broken(chosen: dict[str, int]) -> list[ProcessSpec]:
        spec = embedded_nats.spec(tmp_path, chosen["nats"])
        spec.argv.append("--no-such-flag")
        return [spec]

    with pytest.raises(ServiceError, match="nats exited with code") as raised:
        await launch.start_on_free_ports(choose, broken)
    assert not isinstance(raised.value, PortInUse) and len(calls) == 1
