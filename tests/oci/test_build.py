"""The oci backend over real podman: an app's layers and its RUN --mount=type=cache directories
are its own, reused by its next build and never by another app's."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.builder.pipeline import BuildFailed, BuildRequest, build
from shipway.oci.images import Images
from shipway.sandbox import Limits
from tests.oci.conftest import debian_tar, tidy  # noqa: F401  (debian_tar: a fixture)
from tests.sandbox.test_network import no_slirp4netns  # noqa: F401  (a fixture)

DOCKERFILE = """\
FROM debian:bookworm-slim
COPY stamp /stamp
RUN --mount=type=cache,target=/c sh -c 'echo "seen $(ls /c | wc -l)"; cp /stamp /c/$(cat /stamp)'
CMD ["true"]
"""


@pytest.fixture
def data(tmp_path: Path, debian_tar: Path) -> Iterator[Path]:  # noqa: F811
    images = Images(tmp_path / "data")
    asyncio.run(images.import_base("debian:bookworm-slim", debian_tar))
    yield tmp_path / "data"
    tidy(images)


async def built(
    data: Path,
    app_id: int,
    build_id: int,
    dockerfile: str = DOCKERFILE,
    limits: Limits | None = None,
) -> list[str]:
    """Build DOCKERFILE for APP_ID, a stamp of BUILD_ID beside it: the build's log."""
    archive = data / f"source-{build_id}.tar"
    with tarfile.open(archive, "w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("stamp", f"b{build_id}\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    lines: list[str] = []

    async def log(line: str, *, private: bool = False) -> None:
        lines.append(line)

    request = BuildRequest(
        build_id=build_id,
        app_id=app_id,
        app=f"app{app_id}",
        source=archive,
        network=False,
        limits=limits or Limits(),
    )
    result = await build(request, data, log)
    assert result.manifest.image is not None and result.manifest.bases
    return lines


async def test_an_apps_layers_and_cache_mounts_are_its_own(data: Path) -> None:
    first = await built(data, 1, 1)
    assert "seen 0" in first and not any("Using cache" in line for line in first)
    again = await built(data, 1, 2)
    assert "seen 1" in again  # the cache directory of app 1's first build
    assert any("Using cache" in line for line in again)  # its own layers up to the COPY
    other = await built(data, 2, 3)
    assert "seen 0" in other and not any("Using cache" in line for line in other)


async def test_run_steps_have_the_builds_limits(data: Path) -> None:
    hog = "FROM debian:bookworm-slim\nRUN perl -e '$x = \"a\" x (300 * 1024 * 1024)'\n"
    with pytest.raises(BuildFailed, match="reached its memory limit of 64 MiB"):
        await built(data, 3, 5, hog, Limits(memory_mb=64))
    with pytest.raises(BuildFailed, match="the build timed out after 3 s"):
        await built(data, 3, 6, "FROM debian:bookworm-slim\nRUN sleep 60\n", Limits(wall_seconds=3))


async def test_without_slirp4netns_a_build_with_network_is_refused(
    data: Path,
    no_slirp4netns: None,  # noqa: F811
) -> None:
    archive = data / "source.tar"
    with tarfile.open(archive, "w") as tar:
        text = b"FROM debian:bookworm-slim\nRUN echo never\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))

    async def log(line: str, *, private: bool = False) -> None:
        assert line != "never"

    request = BuildRequest(build_id=9, app_id=9, app="app9", source=archive, network=True)
    with pytest.raises(BuildFailed, match="slirp4netns is not installed"):
        await build(request, data, log)
    images = Images(data)
    assert [i for i in await images.listing() if i.labels] == []  # only the base, unlabelled
