"""The oci backend over real podman: an app's layers and its RUN --mount=type=cache directories
are its own, reused by its next build and never by another app's."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.builder.pipeline import BuildRequest, build
from shipway.oci.images import Images
from tests.oci.conftest import debian_tar, tidy  # noqa: F401  (debian_tar: a fixture)

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


async def built(data: Path, app_id: int, build_id: int) -> list[str]:
    """Build the Dockerfile for APP_ID, a stamp of BUILD_ID beside it: the build's log."""
    archive = data / f"source-{build_id}.tar"
    with tarfile.open(archive, "w") as tar:
        for name, text in (("Dockerfile", DOCKERFILE), ("stamp", f"b{build_id}\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    lines: list[str] = []

    async def log(line: str, *, private: bool = False) -> None:
        lines.append(line)

    request = BuildRequest(
        build_id=build_id, app_id=app_id, app=f"app{app_id}", source=archive, network=False
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
