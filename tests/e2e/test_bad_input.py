"""Bad input and clients that leave midway, against a real `shipway up`: a clear 4xx, nothing
stored, and nothing in the server's log."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import Instance

pytestmark = pytest.mark.e2e

ECHO = "async function handler(event) { return event.params; }\n"


def wait_for(check: Callable[[], Any], timeout: float = 30) -> Any:
    """CHECK's first truthy answer, polling; fails after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"not so after {timeout} s")


@contextmanager
def server_log(instance: Instance) -> Iterator[Callable[[], str]]:
    """What the server logs from now on."""
    log = instance.data / "shipway.log"
    offset = log.stat().st_size
    yield lambda: log.read_bytes()[offset:].decode(errors="replace")


def assert_no_error(logged: str) -> None:
    for mark in ("Traceback", " ERROR ", "ERROR:"):
        assert mark not in logged, logged


def open_stream(instance: Instance, path: str) -> socket.socket:
    """A raw connection that has asked for PATH and received the start of its answer."""
    sock = socket.create_connection(("127.0.0.1", instance.port), timeout=30)
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {instance.token}"
    sock.sendall(f"{request}\r\nAccept: text/event-stream\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received
    return sock


def served(instance: Instance, client_port: int) -> bool:
    """Whether the server still holds the connection from CLIENT_PORT open."""
    return any(
        c.laddr and c.raddr and c.laddr.port == instance.port and c.raddr.port == client_port
        for c in psutil.net_connections("tcp")
    )


@pytest.mark.parametrize("path", ["/api/v1/audit/tail", "/api/v1/apps/leaver/logs?follow=true"])
def test_a_client_that_leaves_a_stream_leaves_no_error(instance: Instance, path: str) -> None:
    api = httpx.Client(base_url=instance.url, headers={"Authorization": f"Bearer {instance.token}"})
    if api.get("/api/v1/apps/leaver").status_code == 404:
        assert api.post("/api/v1/apps", json={"name": "leaver"}).status_code == 201
    with server_log(instance) as logged:
        # The router notices at once that the client has gone, and closes its connection to
        # the API, which ends the stream there.
        sock = open_stream(instance, path)
        client_port = sock.getsockname()[1]
        assert served(instance, client_port)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        wait_for(lambda: not served(instance, client_port))
        # A new entry, which a tail would send to a client that is gone.
        assert api.patch("/api/v1/apps/leaver", json={"plan": "free"}).status_code == 200
        assert api.get("/healthz").status_code == 200
        assert_no_error(logged())


def runs(instance: Instance, name: str) -> list[Any]:
    answer = httpx.get(
        f"{instance.url}/api/v1/functions/{name}/runs",
        headers={"Authorization": f"Bearer {instance.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"a": ' * 65 + "1" + "}" * 65, "nested more than 64 levels deep (the limit is 64)"),
        ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep (the limit is 64)"),
        ('{"n": 99999999999999999999999}', "n: the integer is beyond 64 bits"),
        ('{"s": "\\ud800"}', "s: holds a lone UTF-16 surrogate"),
    ],
)
def test_function_params_json_may_not_hold_get_422_and_run_nothing(
    instance: Instance, raw: str, message: str
) -> None:
    headers = {"Authorization": f"Bearer {instance.token}"}
    deployed = httpx.post(
        f"{instance.url}/api/v1/functions/echo",
        json={"source": ECHO, "runtime": "js"},
        headers=headers,
        timeout=60,
    )
    assert deployed.status_code == 201, deployed.text
    before = runs(instance, "echo")
    with server_log(instance) as logged:
        answer = httpx.post(
            f"{instance.url}/fn/echo",
            content=raw,
            headers={**headers, "Content-Type": "application/json"},
            timeout=60,
        )
        assert answer.status_code == 422, answer.text
        assert message in answer.json()["error"]["message"]
        assert runs(instance, "echo") == before
        assert_no_error(logged())
    fine = json.loads('{"a": ' * 63 + "1" + "}" * 63)
    called = httpx.post(f"{instance.url}/fn/echo", json=fine, headers=headers, timeout=60)
    assert called.status_code == 200, called.text
    assert called.json() == {"result": fine}
