"""The images in shipway's podman storage: Debian bases made on this machine, archives
imported from elsewhere, and the listing and removal of both.

A machine that reaches no registry still builds `FROM debian:bookworm-slim`: the base is made
here with mmdebstrap from the machine's own apt sources and tagged with the name Docker Hub
gives it, so podman finds it in storage and never asks a registry.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import shutil
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipway import children
from shipway.accounts.roles import Principal, Role
from shipway.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    ShipwayError,
    TooLarge,
    ValidationError,
)
from shipway.events import Event, emit
from shipway.oci.podman import APP_LABEL, BUILD_LABEL, Podman, PodmanError, missing
from shipway.store import Store

log = logging.getLogger(__name__)

GIB = 1024**3
#: The largest archive `import` takes.
MAX_ARCHIVE = 4 * GIB
#: Where Docker Hub keeps its official images: what `FROM debian:…` means.
LIBRARY = "docker.io/library/"
#: debootstrap's merged /usr, as Debian's own images have it, without the usrmerge package
#: (and the perl it pulls in).
MERGED_USR = Path("/usr/share/mmdebstrap/hooks/merged-usr")
#: The machine's own CAs (a TLS-inspecting proxy's, say), copied into every base.
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
#: What Debian's slim images leave out, as their maker (debuerreotype) does; copyrights stay.
SLIM = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/lintian/overrides/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/man/*",
)
#: Seconds mmdebstrap may take (it downloads about 100 packages) and podman may take to store
#: what it is given.
MAKE_TIMEOUT = 900.0
STORE_TIMEOUT = 900.0
#: A reference podman can take as an argument: never an option, never a path.
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
#: A name[:tag] as Docker's reference grammar has it: a registry (with a dot or a port, or
#: localhost), lowercase path components, a tag.
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = r"(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+(?=:))(?::[0-9]+)?"
_NAME = re.compile(rf"(?:{_REGISTRY}/)?{_PATH}(?:/{_PATH})*(?::\w[\w.-]{{0,127}})?")

Line = Callable[[str], Any]


@dataclass(frozen=True)
class Base:
    """A base image shipway can make: a Debian suite, slim or not."""

    suite: str
    slim: bool


BASES = {
    "debian:bookworm": Base("bookworm", slim=False),
    "debian:bookworm-slim": Base("bookworm", slim=True),
}


@dataclass(frozen=True)
class Image:
    """One image in storage, as podman lists it."""

    id: str
    names: tuple[str, ...]
    size: int
    created: str
    labels: dict[str, str] = field(default_factory=dict)
    containers: int = 0

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "names": list(self.names),
            "size": self.size,
            "created": self.created,
            "app": self.labels.get(APP_LABEL),
            "build": self.labels.get(BUILD_LABEL),
            "labels": self.labels,
            "containers": self.containers,
        }

    @classmethod
    def listed(cls, raw: dict[str, Any]) -> Image:
        """The image from one entry of `podman images --format json`."""
        created = raw.get("Created")
        return cls(
            id=f"sha256:{raw['Id']}",
            names=tuple(raw.get("Names") or ()),
            size=int(raw.get("Size") or 0),
            created=datetime.fromtimestamp(created, UTC).isoformat()
            if isinstance(created, int | float)
            else str(raw.get("CreatedAt") or ""),
            labels=dict(raw.get("Labels") or {}),
            containers=int(raw.get("Containers") or 0),
        )


@dataclass(frozen=True)
class Loaded:
    """What an archive put in storage: the references podman named, and their images."""

    references: tuple[str, ...]
    images: tuple[Image, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "references": list(self.references),
            "images": [image.to_json() for image in self.images],
        }


@dataclass(frozen=True)
class Removed:
    """What `rm` did: names taken off an image, images deleted (and containers, forced)."""

    reference: str
    untagged: tuple[str, ...]
    deleted: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "untagged": list(self.untagged),
            "deleted": list(self.deleted),
        }


def authorize(principal: Principal) -> None:
    """Images are shared by every tenant's builds: only the platform's owners manage them."""
    principal.require(Role.OWNER)
    if not principal.platform_admin:
        raise Forbidden("images are the platform's: this needs a platform owner token")


def base_of(name: object) -> Base:
    """The base called NAME; ValidationError names those shipway can make."""
    if isinstance(name, str) and name in BASES:
        return BASES[name]
    raise ValidationError(
        f"shipway cannot make the base image {name!r}; it makes {', '.join(BASES)}",
        details={"name": name, "known": list(BASES)},
    )


def check_reference(ref: object) -> str:
    """REF, if podman can take it as an image's name, tag, digest or ID."""
    if isinstance(ref, str) and _REF.fullmatch(ref):
        return ref
    raise ValidationError(
        f"the image reference {ref!r} must be a name[:tag], name@digest or image ID: "
        "letters, digits and . _ / : @ -, starting with a letter or digit",
        details={"reference": ref},
    )


def check_name(name: object) -> str:
    """NAME, if it is a name[:tag] podman can give an image (example.com/team/app:1)."""
    if isinstance(name, str) and len(name) <= 255 and _NAME.fullmatch(name):
        return name
    raise ValidationError(
        f"the tag {name!r} must be a name[:tag] such as example.com/team/app:1: lowercase "
        "letters, digits and . _ - in its path",
        details={"tag": name},
    )


def mmdebstrap_argv(
    base: Base, out: Path, cas: Sequence[Path] = (), merged_usr: Path | None = MERGED_USR
) -> list[str]:
    """The mmdebstrap command that writes BASE's root file system to the tar OUT, with the
    extra CAS trusted; MERGED_USR, where it exists, is mmdebstrap's hook for merged /usr."""
    argv = [shutil.which("mmdebstrap") or "mmdebstrap", "--variant=minbase"]
    if merged_usr is not None and merged_usr.is_dir():
        argv.append(f"--hook-dir={merged_usr}")
    argv.append("--include=ca-certificates")
    if base.slim:
        argv += [f"--dpkgopt={option}" for option in SLIM]
    if cas:
        # copy-in takes its paths as words: a name with a space could not be given.
        argv.append(f"--customize-hook=copy-in {' '.join(map(str, cas))} {EXTRA_CAS}/")
        argv.append('--customize-hook=chroot "$1" update-ca-certificates')
    return [*argv, "--format=tar", base.suite, str(out)]


def extra_cas(directory: Path = EXTRA_CAS) -> list[Path]:
    """The machine's own CAs (DIRECTORY/*.crt), which a build behind its proxy needs."""
    if not directory.is_dir():
        return []
    return sorted(
        path for path in directory.glob("*.crt") if path.is_file() and len(path.name.split()) == 1
    )


async def rootfs(base: Base, out: Path, line: Line | None = None) -> None:
    """Write BASE's root file system to the tar OUT with mmdebstrap, its progress to LINE."""
    if shutil.which("mmdebstrap") is None:
        raise ServiceError("mmdebstrap is not installed: run `apt-get install mmdebstrap`")
    argv = mmdebstrap_argv(base, out, extra_cas())
    proc = await children.start(
        *argv,
        stdin=children.DEVNULL,
        stdout=children.PIPE,
        stderr=children.STDOUT,
        limit=1024 * 1024,  # apt's progress can make a long line
    )
    said: list[str] = []
    try:
        async with asyncio.timeout(MAKE_TIMEOUT):
            assert proc.stdout is not None
            async for raw in proc.stdout:
                text = raw.decode(errors="replace").rstrip()
                if text:
                    said = [*said[-19:], text]
                    if line is not None:
                        line(text)
            code = await proc.wait()
    except TimeoutError as e:
        raise ServiceError(
            f"mmdebstrap did not make the {base.suite} base in {MAKE_TIMEOUT:.0f} s",
            details={"output": said},
        ) from e
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.returncode != 0:
            out.unlink(missing_ok=True)
    if code != 0:
        # The first error says why; those after it say that mmdebstrap gave up.
        why = next((t for t in said if t.startswith("E: ")), said[-1] if said else "no output")
        raise ServiceError(
            f"mmdebstrap could not make the {base.suite} base: {why.removeprefix('E: ')}",
            details={"output": said},
        )


class Images:
    """The images of one data dir's podman storage."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.podman = Podman(data_dir)

    # -- read ----------------------------------------------------------------------------------

    async def listing(self) -> list[Image]:
        """Every image, newest first."""
        raw = await self._podman("images", "--format", "json")
        # podman lists an image once for each of its digests: once is enough here.
        found = {image.id: image for image in map(Image.listed, raw or ())}
        return sorted(found.values(), key=lambda image: (image.created, image.id), reverse=True)

    async def get(self, ref: str) -> Image:
        """The image REF names; NotFound when there is none."""
        ref = check_reference(ref)
        try:
            image_id = await self.podman.run("image", "inspect", "--format", "{{.Id}}", ref)
        except PodmanError as e:
            raise _refusal(e, ref) from e
        wanted = f"sha256:{image_id.strip()}"
        for image in await self.listing():
            if image.id == wanted:
                return image
        # Not listed (an intermediate image of a build): what inspect says is enough.
        return Image(id=wanted, names=(), size=0, created="")

    # -- make, import --------------------------------------------------------------------------

    async def make_base(self, name: str, line: Line | None = None) -> Image:
        """Make the base NAME (debian:bookworm-slim, say) and tag it as Docker Hub does."""
        base = base_of(name)
        self._check_podman()
        out = self.scratch(".tar")
        try:
            await rootfs(base, out, line)
            return await self.import_base(name, out)
        finally:
            out.unlink(missing_ok=True)

    async def import_base(self, name: str, tar: Path) -> Image:
        """Store the root file system TAR as the base NAME, which runs bash by default."""
        base_of(name)
        ref = LIBRARY + name
        try:
            await self.podman.run(
                "import", "--change", 'CMD ["bash"]', str(tar), ref, timeout=STORE_TIMEOUT
            )
        except (PodmanError, TimeoutError) as e:
            why = e.message if isinstance(e, PodmanError) else f"no answer in {STORE_TIMEOUT:.0f} s"
            raise ServiceError(f"podman could not store {name}: {why}") from e
        return await self.get(ref)

    async def load(self, archive: Path, tag: str | None = None) -> Loaded:
        """Store the images of ARCHIVE (from `podman save` or `docker save`, OCI or docker
        format, gzipped or not); TAG names its one image too. A file that is no image archive
        changes nothing."""
        if tag is not None:
            check_name(tag)
        self._check_podman()
        before = {image.id for image in await self.listing()}
        references = await self._load(archive)
        found = {image.id: image for image in [await self.get(ref) for ref in references]}
        images = tuple(found.values())
        if tag is None:
            return Loaded(references, images)
        if len(images) != 1:
            for image in images:
                if image.id not in before:
                    await self._podman_quietly("rmi", image.id)
            raise ValidationError(
                f"--tag names one image, but the archive holds {len(images)}: "
                f"{', '.join(references) or 'none'}; nothing was imported",
                details={"references": list(references)},
            )
        try:
            await self.podman.run("tag", images[0].id, tag)
        except PodmanError as e:
            raise _refusal(e, tag) from e
        tagged = await self.get(images[0].id)
        return Loaded((*references, *(n for n in tagged.names if n not in references)), (tagged,))

    async def _load(self, archive: Path) -> tuple[str, ...]:
        """`podman load` ARCHIVE (unzipped first if gzipped): the references it names."""
        unzipped = await asyncio.to_thread(_gunzip, archive, self.scratch(".tar"))
        said: list[str] = []
        try:
            source = unzipped or archive
            code = await self.podman.stream("load", "--input", str(source), line=said.append)
        finally:
            if unzipped is not None:
                unzipped.unlink(missing_ok=True)
        if code != 0:
            await self.podman.settle()
            why = _load_error(said, source)
            raise ValidationError(
                f"not an image archive podman can load: {why}", details={"podman": why}
            )
        return tuple(
            name.strip()
            for text in said
            if text.startswith("Loaded image")
            for name in text.partition(": ")[2].split(",")
            if name.strip()
        )

    def scratch(self, suffix: str) -> Path:
        """A new path in DATA/tmp for a file that is on its way into storage."""
        directory = self.data_dir / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"image-{uuid.uuid4().hex}{suffix}"

    async def receive(
        self, chunks: AsyncIterator[bytes], limit: int = MAX_ARCHIVE, declared: int | None = None
    ) -> Path:
        """Write an uploaded archive to DATA/tmp; TooLarge once it passes LIMIT bytes, or at
        once when its DECLARED size does."""
        too_large = TooLarge(
            f"the image archive is larger than the {limit / GIB:g} GiB limit",
            details={"limit_bytes": limit},
        )
        if declared is not None and declared > limit:
            raise too_large
        path = self.scratch(".tar")
        written = 0
        try:
            with path.open("wb") as out:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > limit:
                        raise too_large
                    await asyncio.to_thread(out.write, chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    # -- remove --------------------------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False) -> Removed:
        """Take the name REF off its image, and delete the image once no name is left; an image
        a container uses is kept (Conflict) unless FORCE, which removes those containers too."""
        ref = check_reference(ref)
        self._check_podman()
        try:
            said = await self.podman.run("rmi", *(["--force"] if force else []), "--", ref)
        except PodmanError as e:
            raise _refusal(e, ref) from e
        lines = [text.strip() for text in said.splitlines()]
        return Removed(
            ref,
            untagged=tuple(
                t.removeprefix("Untagged: ") for t in lines if t.startswith("Untagged:")
            ),
            deleted=tuple(t.removeprefix("Deleted: ") for t in lines if t.startswith("Deleted:")),
        )

    # -- podman --------------------------------------------------------------------------------

    def _check_podman(self) -> None:
        problem = missing()
        if problem is not None:
            raise ServiceError(problem)

    async def _podman(self, *args: str) -> Any:
        self._check_podman()
        try:
            return await self.podman.json(*args)
        except PodmanError as e:
            raise ServiceError(f"podman {args[0]} failed: {e.message}") from e

    async def _podman_quietly(self, *args: str) -> None:
        try:
            await self.podman.run(*args)
        except PodmanError as e:
            log.warning("podman %s: %s", " ".join(args), e.message)


def record(
    store: Store, principal: Principal, action: str, ref: str, payload: dict[str, Any]
) -> None:
    """Write ACTION (image.base, image.import, image.remove) on the image REF to the
    activity log."""
    subject = f"image:{ref}"
    with store.transaction() as session:
        emit(session, Event(principal.organization_id, principal.actor, action, subject, payload))


def _refusal(error: PodmanError, ref: str) -> ShipwayError:
    """podman's refusal of REF as the error the API answers with."""
    message = error.message
    if "image not known" in message or "no such image" in message.lower():
        return NotFound(f"no image {ref!r} in shipway's storage", details={"reference": ref})
    if "in use by a container" in message:
        return Conflict(
            f"image {ref!r} is used by a container; remove that first, or force it "
            "(which removes the container too)",
            details={"reference": ref, "podman": message},
        )
    if "reference format" in message or "must be lowercase" in message:
        return ValidationError(f"{ref!r}: {message}", details={"reference": ref})
    return ServiceError(f"podman failed on {ref!r}: {message}", details={"reference": ref})


def _gunzip(archive: Path, out: Path, limit: int = 4 * MAX_ARCHIVE) -> Path | None:
    """OUT, ARCHIVE unzipped (podman does not read gzipped archives), or None when ARCHIVE is
    not gzipped. TooLarge past LIMIT bytes, as a gzip bomb would be."""
    with archive.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            return None
    written = 0
    try:
        with gzip.open(archive, "rb") as unzipping, out.open("wb") as unzipped:
            while chunk := unzipping.read(1024 * 1024):
                written += len(chunk)
                if written > limit:
                    raise TooLarge(
                        f"the image archive unzips to more than {limit / GIB:g} GiB",
                        details={"limit_bytes": limit},
                    )
                unzipped.write(chunk)
    except (OSError, EOFError, zlib.error) as e:
        out.unlink(missing_ok=True)
        raise ValidationError(f"the image archive is gzipped but does not unzip: {e}") from e
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def _load_error(said: list[str], archive: Path) -> str:
    """podman's own account of why it could not load ARCHIVE, on one line, without the
    temporary file's name."""
    start = next((i for i, text in enumerate(said) if text.startswith("Error: ")), None)
    lines = [t.strip() for t in (said[start:] if start is not None else said[-3:]) if t.strip()]
    if not lines:
        return "podman load failed"
    text = " ".join(
        [lines[0].removeprefix("Error: "), "; ".join(t.lstrip("* ") for t in lines[1:])]
    )
    return text.strip().replace(str(archive), "the archive")
