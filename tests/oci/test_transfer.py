"""Images sent between two podman storages by digest, over real podman: what arrives is the
image asked for, with the same id; anything else is refused and leaves nothing stored. Then
the same through the control plane's builder API, as a builder on another machine sends it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipway.builder.records.remote import RemoteRecords
from shipway.errors import ServiceError
from shipway.oci import transfer
from shipway.oci.podman import APP_LABEL, BUILD_LABEL, Podman
from tests.builder.conftest import ControlPlane, control_plane  # noqa: F401  (a real API)
from tests.oci.conftest import needs_podman

MIB = 1024 * 1024


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[Podman]:
    """The storage where images are built: a builder's data dir."""
    yield from _storage(tmp_path / "builder")


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Podman]:
    """The storage of another data dir, where releases run: the control plane's."""
    yield from _storage(tmp_path / "plane")


def _storage(data_dir: Path) -> Iterator[Podman]:
    needs_podman()
    podman = Podman(data_dir)
    yield podman
    shutil.rmtree(podman.runroot, ignore_errors=True)


async def made(podman: Podman, work: Path, text: str = "hello\n", extra: int = 0) -> str:
    """A small image (a file saying TEXT, and EXTRA random bytes), as `podman import` makes
    one: its id."""
    root = work / f"rootfs-{uuid.uuid4().hex}"
    root.mkdir(parents=True)
    (root / "hello.txt").write_text(text)
    if extra:
        (root / "blob.bin").write_bytes(os.urandom(extra))
    with tarfile.open(root.with_suffix(".tar"), "w") as tar:
        tar.add(root, arcname=".")
    label = f"--change=LABEL {APP_LABEL}=web"
    said = await podman.run("import", label, "--change", 'CMD ["/hello.txt"]', f"{root}.tar")
    return "sha256:" + said.strip().removeprefix("sha256:")


async def built(podman: Podman, work: Path, base: str, image_format: str) -> str:
    """An image `podman build` makes FROM BASE in IMAGE_FORMAT (oci or docker): its id."""
    context = work / f"context-{image_format}"
    context.mkdir()
    (context / "app.txt").write_text("app\n")
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY app.txt /app.txt\nLABEL {APP_LABEL}=web {BUILD_LABEL}=7\nEXPOSE 8000\n"
    )
    iidfile = work / f"iid-{image_format}"
    await podman.run(
        "build", "--quiet", "--pull=never", "--format", image_format,
        "--iidfile", str(iidfile), str(context),
    )  # fmt: skip
    found = iidfile.read_text().strip()
    return found if found.startswith("sha256:") else f"sha256:{found}"


async def images(podman: Podman) -> list[str]:
    """Every image in the storage, intermediate ones too."""
    said = await podman.run("images", "--all", "--quiet", "--no-trunc")
    return sorted(said.split())


async def layers(podman: Podman) -> list[str]:
    """Every layer in the storage, whether an image uses it or not."""
    driver = (await podman.run("info", "--format", "{{.Store.GraphDriverName}}")).strip()
    found = podman.root / f"{driver}-layers" / "layers.json"
    return [layer["id"] for layer in json.loads(found.read_text())] if found.exists() else []


def rewritten(archive: Path, out: Path, change: dict[str, bytes]) -> Path:
    """ARCHIVE with the files named in CHANGE given new contents."""
    with tarfile.open(archive) as source, tarfile.open(out, "w") as target:
        for member in source:
            data = source.extractfile(member) if member.isfile() else None
            name = member.name.removeprefix("./")
            if name in change:
                member.size = len(change[name])
                target.addfile(member, io.BytesIO(change[name]))
            else:
                target.addfile(member, data)
    return out


def manifest_of(archive: Path) -> list[dict[str, object]]:
    with tarfile.open(archive) as tar:
        found = tar.extractfile("manifest.json")
        assert found is not None
        entries: list[dict[str, object]] = json.load(found)
        return entries


# -- between two storages ----------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["oci", "docker"])
async def test_an_image_arrives_with_the_same_id_whatever_format_it_was_built_in(
    builder: Podman, plane: Podman, tmp_path: Path, image_format: str
) -> None:
    base = await made(builder, tmp_path)
    image = await built(builder, tmp_path, base, image_format)
    archive = await transfer.export(builder, image, tmp_path / "out")
    assert archive.parent == tmp_path / "out" and archive.stat().st_size > 0
    await transfer.receive(plane, archive, image)
    assert await images(plane) == [image]  # the image only: its base's layers, not the base
    said = await plane.json("image", "inspect", image)
    assert said[0]["Config"]["Labels"][APP_LABEL] == "web"
    # Named as its builder named it, from its labels, for cleanup to know it.
    assert said[0]["RepoTags"] == ["localhost/shipway/web:build-7"]
    assert "8000/tcp" in said[0]["Config"]["ExposedPorts"]
    assert await transfer.exists(plane, image)


async def test_an_archive_whose_path_podman_cannot_take_is_not_blamed_on_the_archive(
    builder: Podman, plane: Podman, tmp_path: Path
) -> None:
    image = await made(builder, tmp_path)
    archive = await transfer.export(builder, image, tmp_path)
    (tmp_path / "a:b").mkdir()
    moved = archive.rename(tmp_path / "a:b" / "image.tar")
    with pytest.raises(ServiceError, match="podman cannot read an archive whose path has a ':'"):
        await transfer.receive(plane, moved, image)
    assert await images(plane) == []


async def test_an_archive_of_another_image_is_refused_and_stores_nothing(
    builder: Podman, plane: Podman, tmp_path: Path
) -> None:
    image, other = await made(builder, tmp_path), await made(builder, tmp_path, "other\n")
    archive = await transfer.export(builder, other, tmp_path)
    with pytest.raises(ValueError, match=rf"^the archive's image is {other}$"):
        await transfer.receive(plane, archive, image)
    assert await images(plane) == [] and await layers(plane) == []


async def test_a_layer_changed_on_the_way_is_refused_and_stores_nothing(
    builder: Podman, plane: Podman, tmp_path: Path
) -> None:
    base = await made(builder, tmp_path)
    image = await built(builder, tmp_path, base, "oci")
    archive = await transfer.export(builder, image, tmp_path)
    [entry] = manifest_of(archive)
    last = entry["Layers"][-1]  # type: ignore[index]
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "app.txt").write_text("evil\n")
    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        tar.add(evil / "app.txt", arcname="app.txt")
    tampered = rewritten(
        archive, tmp_path / "tampered.tar", {last: (tmp_path / "evil.tar").read_bytes()}
    )
    with pytest.raises(ValueError, match=rf"^layer {last} has the digest sha256:\w+, not "):
        await transfer.receive(plane, tampered, image)
    # podman alone would refuse it too, but only after storing the layers before it.
    assert await images(plane) == [] and await layers(plane) == []


async def test_an_archive_of_two_images_is_refused(
    builder: Podman, plane: Podman, tmp_path: Path
) -> None:
    image, other = await made(builder, tmp_path), await made(builder, tmp_path, "other\n")
    two = tmp_path / "two.tar"
    await builder.run(
        "save", "--format", "docker-archive", "--multi-image-archive", "--output", str(two),
        image, other,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"^the archive holds 2 images; it must hold one$"):
        await transfer.receive(plane, two, image)
    assert await images(plane) == [] and await layers(plane) == []


async def test_an_archive_that_names_its_image_is_refused(
    builder: Podman, plane: Podman, tmp_path: Path
) -> None:
    """A name in the archive would be taken from whatever image has it on the control plane."""
    image = await made(builder, tmp_path)
    await builder.run("tag", image, "docker.io/library/debian:bookworm-slim")
    named = tmp_path / "named.tar"
    await builder.run(
        "save", "--format", "docker-archive", "--output", str(named),
        "docker.io/library/debian:bookworm-slim",
    )  # fmt: skip
    with pytest.raises(ValueError, match="names its image"):
        await transfer.receive(plane, named, image)
    assert await images(plane) == []


@pytest.mark.parametrize(
    "contents", [b"", b"not a tar at all", b"\0" * 10240], ids=["empty", "text", "empty-tar"]
)
async def test_what_is_no_image_archive_is_refused(
    plane: Podman, tmp_path: Path, contents: bytes
) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(contents)
    with pytest.raises(ValueError, match=r"^not an image archive|has no file 'manifest\.json'"):
        await transfer.receive(plane, junk, "sha256:" + "0" * 64)
    assert await images(plane) == []


async def test_an_image_already_stored_is_not_read_again(builder: Podman, tmp_path: Path) -> None:
    image = await made(builder, tmp_path)
    await transfer.receive(builder, tmp_path / "never-written.tar", image)
    assert await images(builder) == [image]


@pytest.mark.parametrize("bad", ["", "sha256:abc", "0" * 64, "sha256:" + "G" * 64, "--all"])
async def test_only_a_digest_names_an_image(builder: Podman, tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="not an image digest"):
        await transfer.export(builder, bad, tmp_path)
    with pytest.raises(ValueError, match="not an image digest"):
        await transfer.receive(builder, tmp_path / "x.tar", bad)
    assert not await transfer.exists(builder, "sha256:" + "0" * 64)


# -- through the control plane -----------------------------------------------------------------


@pytest.fixture
def remote(control_plane: ControlPlane, tmp_path: Path) -> Iterator[RemoteRecords]:  # noqa: F811
    """A builder on another machine, with its own data dir and storage."""
    records = RemoteRecords(control_plane.url, control_plane.token, tmp_path / "builder")
    yield records
    records.close()


@pytest.fixture
def received(control_plane: ControlPlane) -> Iterator[Podman]:  # noqa: F811
    """The control plane's storage."""
    yield from _storage(control_plane.settings.data_dir)


def sent(records: RemoteRecords) -> list[tuple[str, str]]:
    """From now on, the method and path of each request RECORDS makes."""
    made: list[tuple[str, str]] = []
    records.http.event_hooks["request"].append(
        lambda request: made.append((request.method, request.url.path))
    )
    return made


async def test_a_builder_elsewhere_sends_an_image_once(
    builder: Podman, received: Podman, remote: RemoteRecords, tmp_path: Path
) -> None:
    image = await made(builder, tmp_path)
    requests = sent(remote)
    path = f"/api/v1/builder/images/{image}"
    await asyncio.to_thread(remote.publish_image, image, remote.data_dir)
    assert requests == [("HEAD", path), ("PUT", path)]
    assert await images(received) == [image]
    assert list((remote.data_dir / "tmp").iterdir()) == []  # its archive, gone once sent
    await asyncio.to_thread(remote.publish_image, image, remote.data_dir)
    assert requests[2:] == [("HEAD", path)]


async def test_an_image_larger_than_a_request_body_may_be_is_sent(
    builder: Podman, received: Podman, remote: RemoteRecords, tmp_path: Path
) -> None:
    image = await made(builder, tmp_path, extra=3 * MIB)  # the API's usual limit is 1 MiB
    await asyncio.to_thread(remote.publish_image, image, remote.data_dir)
    assert await images(received) == [image]


async def test_the_control_plane_refuses_an_image_that_is_not_the_one_named(
    builder: Podman,
    received: Podman,
    control_plane: ControlPlane,  # noqa: F811
    tmp_path: Path,
) -> None:
    image, other = await made(builder, tmp_path), await made(builder, tmp_path, "other\n")
    archive = await transfer.export(builder, other, tmp_path)
    base = f"{control_plane.url}/api/v1/builder"
    auth = {"Authorization": f"Bearer {control_plane.token}"}
    async with httpx.AsyncClient(base_url=base, headers=auth) as http:
        refused = await http.put(f"/images/{image}", content=archive.read_bytes())
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["message"] == (
            f"image {image}: the archive's image is {other}"
        )
        junk = await http.put(f"/images/{image}", content=b"not a tar")
        assert junk.status_code == 422 and "not an image archive" in junk.text
        named = await http.put("/images/nope", content=b"")
        assert named.status_code == 422 and "not an image digest" in named.text
        assert (await http.head(f"/images/{image}")).status_code == 404
        stranger = await http.put(
            f"/images/{other}", content=b"", headers={"Authorization": "Bearer no"}
        )
        assert stranger.status_code == 401
    assert await images(received) == [] and await layers(received) == []
    uploads = control_plane.settings.data_dir / "sources"
    assert not [p for p in uploads.iterdir() if p.name.startswith(".upload-")]
