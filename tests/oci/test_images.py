"""shipway.oci.images over real podman: bases, imports, the listing and removal."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import pytest

from shipway.errors import Conflict, NotFound, ServiceError, TooLarge, ValidationError
from shipway.oci import images
from shipway.oci.images import BASES, Base, Images
from shipway.oci.podman import ULIMITS
from tests.oci.conftest import TINY_LABELS, Archives, bin_with, needs_mmdebstrap

SLIM = "docker.io/library/debian:bookworm-slim"


def test_slim_leaves_docs_out_but_keeps_copyrights(tmp_path: Path) -> None:
    slim = images.mmdebstrap_argv(BASES["debian:bookworm-slim"], tmp_path / "out.tar")
    full = images.mmdebstrap_argv(BASES["debian:bookworm"], tmp_path / "out.tar")
    assert "--dpkgopt=path-exclude=/usr/share/man/*" in slim
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in slim
    assert slim.index("--dpkgopt=path-exclude=/usr/share/doc/*") < slim.index(
        "--dpkgopt=path-include=/usr/share/doc/*/copyright"
    )
    assert not [arg for arg in full if arg.startswith("--dpkgopt")]
    for argv in (slim, full):
        assert {"--variant=minbase", "--include=ca-certificates", "--format=tar"} <= set(argv)
        assert argv[-2:] == ["bookworm", str(tmp_path / "out.tar")]
        assert not [arg for arg in argv if arg.startswith("--customize-hook")]


def test_the_machines_cas_are_copied_in_and_trusted(tmp_path: Path) -> None:
    cas = tmp_path / "cas"
    cas.mkdir()
    for name in ("proxy.crt", "b.crt", "notes.txt", "with space.crt"):
        (cas / name).write_text("-----BEGIN CERTIFICATE-----\n")
    found = images.extra_cas(cas)
    assert [path.name for path in found] == ["b.crt", "proxy.crt"]
    argv = images.mmdebstrap_argv(BASES["debian:bookworm"], tmp_path / "out.tar", found)
    hooks = [arg.removeprefix("--customize-hook=") for arg in argv if "hook=" in arg]
    assert hooks[-2:] == [
        f"copy-in {cas / 'b.crt'} {cas / 'proxy.crt'} /usr/local/share/ca-certificates/",
        'chroot "$1" update-ca-certificates',
    ]
    assert images.extra_cas(tmp_path / "none") == []


@pytest.mark.parametrize("name", ["debian:sid", "ubuntu:22.04", "debian", "", 5, None])
def test_only_known_bases_are_made(name: object) -> None:
    with pytest.raises(ValidationError) as refused:
        images.base_of(name)
    assert "debian:bookworm, debian:bookworm-slim" in refused.value.message


def test_the_slim_base_has_no_docs_and_the_machines_cas(debian_tar: Path) -> None:
    with tarfile.open(debian_tar) as tar:
        members = {member.name.removeprefix("./"): member for member in tar}
        trusted, status = (
            tar.extractfile(members[name]).read().decode()  # type: ignore[union-attr]
            for name in ("etc/ssl/certs/ca-certificates.crt", "var/lib/dpkg/status")
        )
    assert "usr/bin/bash" in members and "usr/bin/apt-get" in members
    assert members["bin"].issym()  # merged /usr, as Debian's own images
    assert not [name for name in members if name.startswith("usr/share/man/") and "/" in name[15:]]
    assert not [name for name in members if name.startswith("usr/share/locale/")][1:]
    docs = [m for name, m in members.items() if name.startswith("usr/share/doc/") and m.isfile()]
    copyrights = [m for m in docs if m.name.endswith("/copyright")]
    assert len(copyrights) > 50 and len(docs) - len(copyrights) < 5  # the full base has 500
    assert "Package: usrmerge\n" not in status  # nor the perl it needs
    assert "Package: ca-certificates\n" in status
    for ca in images.extra_cas():
        assert f"usr/local/share/ca-certificates/{ca.name}" in members
        body = "".join(line for line in ca.read_text().splitlines() if "-----" not in line)
        assert body[:200] in trusted.replace("\n", "")


async def test_a_base_is_named_as_docker_hub_names_it(storage: Images, debian_tar: Path) -> None:
    made = await storage.import_base("debian:bookworm-slim", debian_tar)
    assert made.names == (SLIM,) and made.id.startswith("sha256:") and len(made.id) == 71
    assert made.size > 50_000_000 and made.created
    assert (await storage.get("debian:bookworm-slim")).id == made.id
    cmd = await storage.podman.run("image", "inspect", "--format", "{{json .Config.Cmd}}", SLIM)
    assert cmd.strip() == '["bash"]'
    said = await storage.podman.run(
        "run", "--rm", "--network", "none", *ULIMITS, "debian:bookworm-slim",
        "cat", "/etc/debian_version",
    )  # fmt: skip
    assert said.startswith("12.")
    again = await storage.import_base("debian:bookworm-slim", debian_tar)
    assert again.names == (SLIM,)
    assert [image.names for image in await storage.listing()].count((SLIM,)) == 1


async def test_making_an_unknown_base_changes_nothing(storage: Images) -> None:
    with pytest.raises(ValidationError, match="it makes debian:bookworm, debian:bookworm-slim"):
        await storage.make_base("debian:trixie")
    assert not (storage.data_dir / "tmp").exists()


async def test_without_mmdebstrap_the_error_says_what_to_install(
    storage: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", bin_with(tmp_path, "podman", "runc"))
    with pytest.raises(ServiceError, match=r"run `apt-get install mmdebstrap`"):
        await storage.make_base("debian:bookworm-slim")
    assert list((storage.data_dir / "tmp").iterdir()) == []


async def test_mmdebstraps_own_error_is_said(tmp_path: Path) -> None:
    needs_mmdebstrap()
    with pytest.raises(ServiceError, match=r"no-such-suite.*Release") as failed:
        await images.rootfs(Base("no-such-suite", slim=True), tmp_path / "out.tar")
    assert failed.value.details["output"]
    assert not (tmp_path / "out.tar").exists()


@pytest.mark.parametrize("kind", ["docker", "oci", "gzipped"])
async def test_an_archive_is_loaded_with_its_names_and_labels(
    storage: Images, archives: Archives, kind: str, tmp_path: Path
) -> None:
    archive = archives.docker if kind == "gzipped" else getattr(archives, kind)
    if kind == "gzipped":  # as `docker save IMAGE | gzip` writes it
        archive = tmp_path / "image.tar.gz"
        archive.write_bytes(gzip.compress(archives.docker.read_bytes()))
    loaded = await storage.load(archive)
    assert loaded.references == ("localhost/tiny:1",)
    [image] = loaded.images
    assert image.id == archives.image_id and image.labels == TINY_LABELS
    [listed] = await storage.listing()
    assert listed.to_json() | {"size": 0} == image.to_json() | {"size": 0}
    assert listed.to_json()["app"] == "web" and listed.to_json()["build"] == "7"
    assert listed.short_id == archives.image_id[7:19]


async def test_a_tag_names_the_archives_image(storage: Images, archives: Archives) -> None:
    loaded = await storage.load(archives.docker, "example.com/team/tiny:2")
    assert loaded.references == ("localhost/tiny:1", "example.com/team/tiny:2")
    assert loaded.images[0].names == ("localhost/tiny:1", "example.com/team/tiny:2")
    assert (await storage.get("example.com/team/tiny:2")).id == archives.image_id


async def test_a_tag_for_an_archive_of_two_images_is_refused(
    storage: Images, archives: Archives
) -> None:
    with pytest.raises(ValidationError, match="--tag names one image, but the archive holds 2"):
        await storage.load(archives.two, "example.com/team/tiny:2")
    assert await storage.listing() == []
    loaded = await storage.load(archives.two)
    assert set(loaded.references) == {"localhost/tiny:1", "localhost/other:1"}
    assert len(loaded.images) == 2


@pytest.mark.parametrize("tag", ["-q", "Upper", "Team/x:1", "x" * 300, "a/../b:1"])
async def test_a_bad_tag_is_refused_before_loading(
    storage: Images, archives: Archives, tag: str
) -> None:
    with pytest.raises(ValidationError):
        await storage.load(archives.docker, tag)
    assert await storage.listing() == []


@pytest.mark.parametrize("content", [b"", b"not an image\n", "truncated", b"\x1f\x8bnot gzip"])
async def test_a_file_that_is_no_image_archive_changes_nothing(
    storage: Images, archives: Archives, tmp_path: Path, content: bytes | str
) -> None:
    await storage.load(archives.oci)
    before = await storage.listing()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(archives.docker.read_bytes()[:3000] if content == "truncated" else content)
    with pytest.raises(
        ValidationError,
        match=r"^(not an image archive podman can load|the image archive is gzipped but does "
        r"not unzip): ",
    ) as refused:
        await storage.load(bad)
    assert str(bad) not in refused.value.message
    assert await storage.listing() == before
    assert list((storage.data_dir / "tmp").iterdir()) == []


async def test_rm_takes_a_name_off_then_deletes(storage: Images, archives: Archives) -> None:
    await storage.load(archives.docker, "example.com/team/tiny:2")
    first = await storage.remove("localhost/tiny:1")
    assert first.untagged == ("localhost/tiny:1",) and first.deleted == ()
    second = await storage.remove("example.com/team/tiny:2")
    assert second.untagged == ("example.com/team/tiny:2",)
    assert second.deleted == (archives.image_id[7:],)
    assert await storage.listing() == []


@pytest.mark.parametrize("ref", ["localhost/tiny:2", "nothing", "0123456789ab"])
async def test_rm_of_an_unknown_image_is_not_found(
    storage: Images, archives: Archives, ref: str
) -> None:
    await storage.load(archives.docker)
    with pytest.raises(NotFound, match=f"no image '{ref}'"):
        await storage.remove(ref)
    with pytest.raises(NotFound):
        await storage.get(ref)


@pytest.mark.parametrize("ref", ["--all", "-f", "", "a b", "../x", "x" * 300, "a;b"])
async def test_rm_refuses_what_is_no_reference(storage: Images, ref: str) -> None:
    with pytest.raises(ValidationError, match="must be a name"):
        await storage.remove(ref)


async def test_an_image_a_container_uses_is_removed_only_by_force(
    storage: Images, archives: Archives
) -> None:
    await storage.load(archives.docker)
    await storage.podman.run("create", "--name", "uses-tiny", "localhost/tiny:1", "/hello.txt")
    with pytest.raises(Conflict, match="is used by a container"):
        await storage.remove("localhost/tiny:1")
    assert [image.names for image in await storage.listing()] == [("localhost/tiny:1",)]
    forced = await storage.remove(archives.image_id, force=True)
    assert forced.deleted == (archives.image_id[7:],)
    assert await storage.listing() == []
    assert await storage.podman.json("ps", "--all", "--format", "json") == []


async def _chunks(*pieces: bytes):  # type: ignore[no-untyped-def]
    for piece in pieces:
        yield piece


async def test_an_upload_is_written_to_tmp_up_to_its_limit(storage: Images) -> None:
    path = await storage.receive(_chunks(b"a" * 10, b"b" * 10), limit=20)
    assert path.parent == storage.data_dir / "tmp" and path.read_bytes() == b"a" * 10 + b"b" * 10
    with pytest.raises(TooLarge, match="larger than the"):
        await storage.receive(_chunks(b"a" * 10, b"b" * 11), limit=20)
    with pytest.raises(TooLarge):
        await storage.receive(_chunks(), limit=20, declared=21)
    assert list(path.parent.iterdir()) == [path]
