"""Zero downtime: under a steady load of concurrent requests, deploys fail none of them."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.runtime.conftest import WEB, Node

pytestmark = pytest.mark.integration

HOST = "shop.localhost"
CLIENTS = 16


async def test_no_request_fails_while_releases_switch_under_load(node: Node) -> None:
    app_id = node.create_app("shop")
    await node.deploy("shop", WEB)
    statuses: Counter[int] = Counter()
    releases: Counter[str] = Counter()
    failures: list[str] = []
    stop = asyncio.Event()

    async def client(number: int) -> None:
        async with httpx.AsyncClient(base_url=node.url(HOST), headers={"Host": HOST}) as http:
            turn = 0
            while not stop.is_set():
                turn += 1
                try:
                    if turn % 3 == 0:
                        response = await http.post("/", content=b"x" * 20_000, timeout=30)
                    elif turn % 5 == 0:
                        response = await http.get("/slow?s=0.2", timeout=30)
                    else:
                        response = await http.get("/", timeout=30)
                except httpx.HTTPError as e:
                    failures.append(f"client {number}: {type(e).__name__}: {e}")
                    continue
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    releases[response.json()["release"]] += 1
                else:
                    failures.append(f"client {number}: {response.status_code} {response.text}")

    load = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
    try:
        await asyncio.sleep(0.5)
        for version in range(2, 5):
            await node.deploy("shop", {**WEB, "version.txt": str(version)})
            await asyncio.sleep(0.5)
        await node.scale(app_id, {"web": 3})
        await asyncio.sleep(0.5)
        await node.scale(app_id, {"web": 1})
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*load)
    assert failures == []
    assert set(statuses) == {200} and statuses[200] > 200
    assert {"v1", "v2", "v3", "v4"} <= set(releases)
