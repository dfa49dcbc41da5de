"""`shipway deploy [PATH] -a APP`: upload a directory without git, honouring its .gitignore
files as git would, and follow the build like a push does."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipway.cli.options import AppOpt, DataOpt
from shipway.cli.output import emit_line, log_line
from shipway.client.api import Api
from shipway.client.follow import read_log
from shipway.client.upload import Source, outcome, settle
from shipway.client.upload import deploy as upload
from shipway.errors import ClientError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

CHUNK = 64 * 1024
BLOCK = tarfile.BLOCKSIZE
ALWAYS_SKIPPED = frozenset({".git"})

#: The .gitignore files that apply in a directory: (the directory relative to the root, rules).
Rules = list[tuple[str, "GitIgnoreSpec"]]


def deploy(
    app: AppOpt,
    path: Annotated[Path, typer.Argument(help="the directory to upload")] = Path("."),
    env: Annotated[
        str | None, typer.Option("--env", help="a preview environment; default production")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="one JSON object per line: the deployment as it starts, each log line "
            '({"line": …}), then the deployment as it ended, with its release and URL',
        ),
    ] = False,
    data: DataOpt = None,
) -> None:
    """Upload a directory (no git needed), follow its build log, exit 1 if it does not go live."""
    root = path.expanduser().resolve()
    if not root.is_dir():
        raise ClientError(f"{path} is not a directory")
    files = list(source_files(root))
    if not files:
        raise ClientError(f"nothing to deploy: {root} holds no files that .gitignore lets through")
    api = Api.find(data)
    if as_json:
        code = deploy_json(api, app, tar_stream(root, files), env)
    else:
        typer.echo(f"-----> Uploading {len(files)} files from {root}")
        source = Source(app=app, chunks=tar_stream(root, files), environment=env)
        code = upload(api, source, typer.echo)
    if code != 0:
        raise typer.Exit(code)


def deploy_json(api: Api, app: str, chunks: Iterable[bytes], env: str | None) -> int:
    """Deploy CHUNKS (a source tar) as `deploy --json` shows it; 0 when it went live."""
    params = {"source": "upload", **({"env": env} if env else {})}
    headers = {"Content-Type": "application/x-tar"}
    path = f"/apps/{app}/deployments"
    started = api.respond("POST", path, params=params, content=chunks, headers=headers).json()
    shown = {
        "deployment": started["id"],
        "build": started["build_id"],
        "app": started["app"],
        "environment": started["environment"],
    }
    emit_line({**shown, "status": started["status"], "url": started["url"]})
    build = read_log(api, int(started["build_id"]), follow=True, on_line=log_line)
    ended = settle(api, int(started["id"]))
    said, code = outcome(ended, build)
    emit_line(
        {
            **shown,
            "status": ended["status"],
            "release": ended.get("release"),
            "url": ended["url"],
            "reason": ended.get("reason"),
            "build_status": build,
            "message": said.removeprefix("-----> "),
        }
    )
    return code


def source_files(root: Path) -> Iterator[str]:
    """The files and links under ROOT that git would take, as sorted POSIX paths: .gitignore
    files apply to their own directory and below, a deeper one overriding a shallower one,
    an ignored directory is not entered, and .git/ is always left out."""
    yield from _walk(root, "", [])


def _walk(root: Path, here: str, rules: Rules) -> Iterator[str]:
    folder = root / here
    ignore_file = folder / ".gitignore"
    if ignore_file.is_file():
        lines = ignore_file.read_text(errors="replace").splitlines()
        from pathspec import GitIgnoreSpec

        rules = [*rules, (here, GitIgnoreSpec.from_lines(lines))]
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        raise ClientError(f"cannot read {folder}: {e.strerror}") from e
    for entry in entries:
        rel = f"{here}/{entry.name}" if here else entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if entry.name in ALWAYS_SKIPPED or ignored(rules, rel, is_dir):
            continue
        if is_dir:
            yield from _walk(root, rel, rules)
        elif entry.is_symlink() or entry.is_file(follow_symlinks=False):
            yield rel


def ignored(rules: Rules, rel: str, is_dir: bool) -> bool:
    """Whether REL is ignored: the deepest .gitignore with a rule about it decides."""
    for base, spec in reversed(rules):
        inside = rel[len(base) + 1 :] if base else rel
        result = spec.check_file(inside + "/" if is_dir else inside)
        if result.include is not None:
            return result.include
    return False


def tar_stream(root: Path, files: Sequence[str]) -> Iterator[bytes]:
    """FILES (relative to ROOT) as an uncompressed tar, a piece at a time: memory stays flat
    however large a file is. Modes are git's (644 or 755); owners are left out."""
    for rel in files:
        path = root / rel
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        info = tarfile.TarInfo(rel)
        info.mtime = int(st.st_mtime)
        if stat.S_ISLNK(st.st_mode):
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
            yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            continue
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
        yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        yield from _content(path, info.size)
    yield b"\0" * (2 * BLOCK)


def _content(path: Path, size: int) -> Iterator[bytes]:
    """SIZE bytes of PATH padded to whole blocks, even if the file changes while it is read."""
    left = size
    try:
        with open(path, "rb") as f:
            while left and (chunk := f.read(min(CHUNK, left))):
                left -= len(chunk)
                yield chunk
    except OSError as e:
        raise ClientError(f"cannot read {path}: {e.strerror}") from e
    if left:
        yield b"\0" * left
    if size % BLOCK:
        yield b"\0" * (BLOCK - size % BLOCK)
