"""`shipway images …`: the images Dockerfile builds start from, thin over the REST API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from shipway.cli.options import DataOpt, JsonOpt
from shipway.cli.output import console, emit_json, errors, table
from shipway.client.api import Api
from shipway.errors import ClientError

images = typer.Typer(
    help="The images Dockerfile builds start from: Debian bases made here, archives imported.",
    no_args_is_help=True,
)

#: Seconds the server may take to make a base (mmdebstrap) or store a large archive.
SLOW = 1800.0
#: The largest archive the server takes, and the size of each piece sent.
MAX_ARCHIVE = 4 * 1024**3
CHUNK = 1024 * 1024
COLUMNS = ["name", "image_id", "size", "created", "app", "build"]


@images.command("base")
def base(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="debian:bookworm or debian:bookworm-slim")
    ],
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Make a Debian base image with mmdebstrap, so `FROM NAME` needs no registry."""
    api = replace(Api.find(data), timeout=SLOW)
    with errors.status(f"Making {name} with mmdebstrap (about 20 s) …"):
        made = api.post("/images:base", {"name": name})
    if as_json:
        emit_json(made)
    else:
        say(f"Made {made['reference']}: {made['id']} ({size(made['size'])})")


@images.command("import")
def import_archive(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="an archive from `podman save` or `docker save`")
    ],
    tag: Annotated[
        str | None,
        typer.Option("--tag", help="a NAME:TAG for its image as well", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Import an OCI or docker image archive into shipway's storage."""
    try:
        length = file.stat().st_size
    except OSError as e:
        raise ClientError(f"cannot read {file}: {e.strerror}") from e
    if length > MAX_ARCHIVE:
        raise ClientError(f"{file} is larger than the {MAX_ARCHIVE // 1024**3} GiB an import takes")
    api = replace(Api.find(data), timeout=SLOW)
    with errors.status(f"Importing {file.name} ({size(length)}) …"):
        loaded = api.request(
            "POST",
            "/images:import",
            params={"tag": tag} if tag else None,
            content=_read(file),
            headers={"Content-Type": "application/x-tar", "Content-Length": str(length)},
        )
    if as_json:
        emit_json(loaded)
        return
    for image in loaded["images"]:
        names = ", ".join(image["names"]) or "an image with no name"
        say(f"Imported {names}: {image['id']} ({size(image['size'])})")


@images.command("list")
def list_images(as_json: JsonOpt = False, data: DataOpt = None) -> None:
    """List the images: names, IDs, sizes, and the app and build of those shipway built."""
    found = Api.find(data).get("/images")
    if as_json:
        emit_json(found)
    else:
        table(rows(found), COLUMNS, empty="No images.")


@images.command("rm")
def remove(
    ref: Annotated[str, typer.Argument(metavar="REF", help="a NAME:TAG or image ID")],
    force: Annotated[
        bool, typer.Option("--force", help="also remove the containers that use it")
    ] = False,
    as_json: JsonOpt = False,
    data: DataOpt = None,
) -> None:
    """Remove an image's name, and the image once it has none left."""
    path = f"/images/{quote(ref, safe='')}"
    removed = Api.find(data).request("DELETE", path, params={"force": "true"} if force else None)
    if as_json:
        emit_json(removed)
        return
    for name in removed["untagged"]:
        say(f"Untagged {name}")
    for image_id in removed["deleted"]:
        say(f"Deleted sha256:{image_id.removeprefix('sha256:')}")


def rows(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row for each name of each image (one for an image with none), as people read them."""
    return [
        {
            "name": name,
            "image_id": image["short_id"],
            "size": size(image["size"]),
            "created": image["created"][:19].replace("T", " "),
            "app": image.get("app"),
            "build": image.get("build"),
        }
        for image in found
        for name in image["names"] or ["<none>"]
    ]


def size(count: int) -> str:
    """COUNT bytes as podman shows them: 85.7 MB."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def say(line: str) -> None:
    console.print(line, highlight=False, markup=False)


def _read(file: Path) -> Iterator[bytes]:
    try:
        with file.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except OSError as e:
        raise ClientError(f"cannot read {file}: {e.strerror}") from e
