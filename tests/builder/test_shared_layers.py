"""Dependency layers are built once per organization: another app of the same organization
with the same key reuses the layer from its first build, installs of other keys go on beside
it; another organization never gets them."""

from __future__ import annotations

import asyncio

from tests.builder.conftest import Builder, Log, node_app

APP = {**node_app("shared"), "server.js": "// v1\n"}
INSTALLING = "-----> Installing dependencies from package-lock.json"
REUSING = "-----> Dependencies unchanged (package-lock.json): reusing layer "


def deps_digest(log: Log) -> str:
    [line] = [line for line in log.text if line.startswith(("-----> Dependency layer", REUSING))]
    return line.split("layer ", 1)[1].split()[0]


async def test_another_app_of_the_organization_reuses_the_layer_on_its_first_build(
    builder: Builder,
) -> None:
    first, second = Log(), Log()
    await builder.build(APP, first, app_id=1, organization_id=1)
    result = await builder.build({**APP, "server.js": "// v2\n"}, second, app_id=2)
    assert INSTALLING in first.text
    assert INSTALLING not in second.text
    assert result.cache_warm
    assert deps_digest(second) == deps_digest(first)


async def test_another_organization_installs_its_own(builder: Builder) -> None:
    ours, theirs = Log(), Log()
    await builder.build(APP, ours, app_id=1, organization_id=1)
    result = await builder.build(APP, theirs, app_id=2, organization_id=2)
    assert INSTALLING in theirs.text
    assert not result.cache_warm
    assert (builder.data / "cache" / "org-1" / "downloads").is_dir()
    assert (builder.data / "cache" / "org-2" / "downloads").is_dir()


async def test_apps_building_the_same_key_at_once_install_it_once(builder: Builder) -> None:
    logs = [Log() for _ in range(3)]
    results = await asyncio.gather(
        *(builder.build(APP, log, app_id=n + 1) for n, log in enumerate(logs))
    )
    assert sum(INSTALLING in log.text for log in logs) == 1, [log.text for log in logs]
    assert sorted(result.cache_warm for result in results) == [False, True, True]
    assert len({deps_digest(log) for log in logs}) == 1


async def test_apps_of_other_keys_install_at_once_without_waiting(builder: Builder) -> None:
    logs = [Log() for _ in range(2)]
    await asyncio.gather(
        *(
            builder.build({**node_app(f"own{n}"), "server.js": ""}, log, app_id=n + 1)
            for n, log in enumerate(logs)
        )
    )
    for log in logs:
        assert INSTALLING in log.text
        assert not any(line.startswith("-----> Waiting") for line in log.text), log.text
