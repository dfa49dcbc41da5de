"""An image sent from one podman storage to another by its digest: a builder on another
machine exports the image it built, and the control plane stores it only once it has checked
that the archive holds that image and nothing else.

The archive is a docker-archive, as `podman save --format docker-archive` writes it. It keeps
the image's config byte for byte, so the image id (the config's digest) is the same on both
sides whether podman built the image in the OCI format or the docker one; an oci-archive
converts a docker-format image's config, which changes its id, and names an image saved by
id `localhost/sha256:…` when it is loaded. Its layers are plain tars named by the digests the
config lists (its diff_ids), so every byte can be checked before podman stores any of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import tarfile
import uuid
from pathlib import Path
from typing import IO, Any

from shipway.errors import ServiceError
from shipway.oci.podman import (
    APP_LABEL,
    BUILD_LABEL,
    Podman,
    PodmanError,
    build_tag,
    digest,
    missing,
)

log = logging.getLogger(__name__)

#: An app's name, as a label may give it: what an image name may hold.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")

FORMAT = "docker-archive"
#: Seconds podman may take to write or store an archive (the largest are several GiB).
TIMEOUT = 1800.0
#: The most the archive's manifest and the image's config may weigh: they are small JSON.
MAX_JSON = 16 * 1024 * 1024
_ID = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 20


def check_id(image_id: str) -> str:
    """IMAGE_ID as podman names an image by digest (sha256:<64 hex>); ValueError otherwise."""
    if not isinstance(image_id, str) or not _ID.fullmatch(image_id):
        raise ValueError(f"not an image digest: {image_id!r}; expected sha256:<64 hex>")
    return image_id


async def exists(podman: Podman, image_id: str) -> bool:
    """Whether the storage holds IMAGE_ID (false too when podman cannot say)."""
    try:
        await podman.run("image", "exists", check_id(image_id))
    except PodmanError:
        return False
    return True


async def export(podman: Podman, image_id: str, into: Path) -> Path:
    """Write IMAGE_ID's archive to a new file in the directory INTO; the caller removes it."""
    check_id(image_id)
    into.mkdir(parents=True, exist_ok=True)
    out = into / f"image-{image_id.removeprefix('sha256:')[:12]}-{uuid.uuid4().hex}.tar"
    try:
        await podman.run(
            "save", "--format", FORMAT, "--output", str(out), image_id, timeout=TIMEOUT
        )
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


async def receive(podman: Podman, archive: Path, image_id: str) -> None:
    """Store IMAGE_ID from ARCHIVE (written by `export`), unless the storage has it already.
    ValueError, with nothing stored, when the archive holds another image, more than one, or
    anything that does not match its digests."""
    check_id(image_id)
    problem = missing()
    if problem is not None:
        raise ServiceError(f"images cannot be stored here: {problem}")
    if await exists(podman, image_id):
        return
    if ":" in str(archive):
        # Neither `load` nor the docker-archive: transport takes such a path.
        raise ServiceError(f"podman cannot read an archive whose path has a ':': {archive}")
    await asyncio.to_thread(verify, archive, image_id)
    before = set(await _ids(podman))
    try:
        loaded = await _load(podman, archive)
    except PodmanError as e:
        raise ValueError(f"podman could not store it: {e.message}") from e
    except TimeoutError as e:
        raise ServiceError(f"podman took more than {TIMEOUT:g} s to store {image_id}") from e
    if loaded != image_id:
        if loaded not in before:
            try:
                await podman.run("rmi", loaded)
            except PodmanError as e:
                log.warning("could not remove %s, stored in place of %s: %s", loaded, image_id, e)
        raise ValueError(f"podman stored it as {loaded}")
    await _tag(podman, image_id)


async def _tag(podman: Podman, image_id: str) -> None:
    """Name a received image as its builder did, from its labels, so that cleanup knows it as
    a build's release image."""
    found = await podman.json("image", "inspect", image_id)
    labels = (found[0].get("Labels") if found else None) or {}
    app, build = labels.get(APP_LABEL), labels.get(BUILD_LABEL)
    if isinstance(app, str) and isinstance(build, str) and build.isdigit() and _NAME.match(app):
        await podman.run("tag", image_id, build_tag(app, build))


def verify(archive: Path, image_id: str) -> None:
    """Check that ARCHIVE is a docker-archive of the one image IMAGE_ID, unnamed, every layer
    matching the digest its config gives it; ValueError says what does not."""
    try:
        with tarfile.open(archive, mode="r:") as tar:
            members = {member.name.removeprefix("./"): member for member in tar}
            manifest = json.loads(_read(tar, members, "manifest.json"))
            if not isinstance(manifest, list) or len(manifest) != 1:
                count = len(manifest) if isinstance(manifest, list) else "no"
                raise ValueError(f"the archive holds {count} images; it must hold one")
            entry = manifest[0]
            if entry.get("RepoTags"):
                # podman would give the image those names, taking them from any other.
                raise ValueError(f"the archive names its image {entry['RepoTags']}; it must not")
            config = _read(tar, members, entry.get("Config"))
            found = f"sha256:{hashlib.sha256(config).hexdigest()}"
            if found != image_id:
                raise ValueError(f"the archive's image is {found}")
            diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids")
            layers = entry.get("Layers")
            if not isinstance(layers, list) or not isinstance(diff_ids, list):
                raise ValueError("the archive does not list the image's layers")
            if len(layers) != len(diff_ids):
                raise ValueError(f"the archive has {len(layers)} layers, the image {len(diff_ids)}")
            for name, wanted in zip(layers, diff_ids, strict=True):
                got = _hashed(_open(tar, members, name))
                if got != wanted:
                    raise ValueError(f"layer {name} has the digest {got}, not {wanted}")
    except (tarfile.TarError, OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not an image archive: {e}") from e
    except (AttributeError, TypeError) as e:
        raise ValueError(f"not an image archive: its manifest is malformed ({e})") from e


def _open(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: Any) -> IO[bytes]:
    member = members.get(name) if isinstance(name, str) else None
    found = tar.extractfile(member) if member is not None else None
    if found is None:
        raise ValueError(f"the archive has no file {name!r}")
    return found


def _read(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: Any) -> bytes:
    data = _open(tar, members, name).read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ValueError(f"{name} is larger than {MAX_JSON // (1024 * 1024)} MiB")
    return data


def _hashed(stream: IO[bytes]) -> str:
    sha = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        sha.update(chunk)
    return f"sha256:{sha.hexdigest()}"


async def _load(podman: Podman, archive: Path) -> str:
    """Store ARCHIVE and return the id podman gives its image. `pull docker-archive:` reads it
    in place, where `load` first tries it as an oci-archive, unpacking all of it to a
    temporary directory."""
    said = await podman.run("pull", "--quiet", f"{FORMAT}:{archive}", timeout=TIMEOUT)
    loaded = said.strip().splitlines()[-1] if said.strip() else ""
    return digest(loaded)


async def _ids(podman: Podman) -> list[str]:
    said = await podman.run("images", "--all", "--quiet", "--no-trunc")
    return [line.strip() for line in said.splitlines() if line.strip()]
