"""`shipway deploy [PATH] --app APP`: deploy a directory without git, honouring .gitignore."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pathspec
import typer

from shipway.cli.client import Api, CliError
from shipway.cli.output import console
from shipway.cli.resources import DataOpt
from shipway.cli.upload import deploy_archive

ALWAYS_SKIPPED = (".git",)


def included(root: Path) -> Iterator[Path]:
    """Files and links under ROOT that git would track: .gitignore files apply, nested too."""
    specs: dict[Path, pathspec.PathSpec] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        ignore = here / ".gitignore"
        if ignore.is_file():
            specs[here] = pathspec.PathSpec.from_lines(
                "gitwildmatch", ignore.read_text().splitlines()
            )

        def ignored(path: Path, is_dir: bool) -> bool:
            for base, spec in specs.items():
                if base == path or base not in path.parents:
                    continue
                rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
                if spec.match_file(rel):
                    return True
            return False

        dirnames[:] = sorted(
            d for d in dirnames if d not in ALWAYS_SKIPPED and not ignored(here / d, True)
        )
        for name in sorted(filenames):
            path = here / name
            if not ignored(path, False):
                yield path


def pack(root: Path) -> bytes:
    """ROOT as an uncompressed tar of what .gitignore lets through."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in included(root):
            tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
    return buffer.getvalue()


def deploy(
    path: Annotated[Path, typer.Argument(help="the directory to deploy")] = Path("."),
    app: Annotated[str, typer.Option("--app", help="the app to deploy to")] = "",
    env: Annotated[
        str | None, typer.Option("--env", help="environment (default: production)")
    ] = None,
    data: DataOpt = None,
) -> None:
    """Upload a directory (no git needed), stream its build log, exit non-zero if it fails."""
    if not app:
        raise CliError("--app is required: the app to deploy to")
    if not path.is_dir():
        raise CliError(f"{path} is not a directory")
    archive = pack(path.resolve())
    console.print(f"-----> Uploading {path} ({len(archive) / 1024:.0f} KiB)", highlight=False)
    ok = deploy_archive(
        Api.find(data),
        app,
        [archive],
        environment=env,
        out=lambda line: console.print(line, markup=False, highlight=False),
    )
    if not ok:
        raise CliError(f"the deployment of {app} did not go live")
