"""The tree of one commit as a tar stream from `git archive`, cut off past a size limit."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

from shipway.errors import ServiceError, TooLarge, ValidationError

CHUNK = 64 * 1024
MIB = 1024 * 1024


def stream(sha: str, limit: int | None, git_dir: Path | None = None) -> Iterator[bytes]:
    """The tar of SHA's tree, chunk by chunk, from GIT_DIR (or the repository git's
    environment points at, as in a hook). TooLarge once past LIMIT bytes; ServiceError
    if git fails."""
    where = ["--git-dir", str(git_dir)] if git_dir is not None else []
    proc = subprocess.Popen(
        ["git", *where, "archive", "--format=tar", sha],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    size = 0
    try:
        while chunk := proc.stdout.read(CHUNK):
            size += len(chunk)
            if limit is not None and size > limit:
                raise TooLarge(
                    f"the source of {sha[:7]} is larger than the {limit / MIB:g} MiB limit"
                )
            yield chunk
        if proc.wait() != 0:
            problem = proc.stderr.read().decode(errors="replace").strip()
            raise ServiceError(f"git archive {sha[:7]} failed: {problem}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


#: How git names the directory that holds a push's objects until its pre-receive hook accepts.
QUARANTINE = re.compile(r"(tmp_objdir-)?incoming-[A-Za-z0-9_-]{1,64}")


async def tree(repo: Path, sha: str, quarantine: str | None = None) -> AsyncGenerator[bytes]:
    """The tar of SHA's tree from the bare repository REPO, chunk by chunk; with QUARANTINE
    (a push's quarantine directory in REPO/objects, while its pre-receive hook runs), from the
    objects of that push too. ValidationError if REPO lacks the commit or the quarantine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    if quarantine is not None:
        held = repo / "objects" / quarantine
        if not QUARANTINE.fullmatch(quarantine) or held.is_symlink() or not held.is_dir():
            raise ValidationError(f"no push is being received into {quarantine!r}")
        env.update(
            GIT_OBJECT_DIRECTORY=str(held), GIT_ALTERNATE_OBJECT_DIRECTORIES=str(repo / "objects")
        )
    proc = await asyncio.create_subprocess_exec(
        "git",
        "--git-dir",
        str(repo),
        "archive",
        "--format=tar",
        sha,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.ensure_future(proc.stderr.read())
    try:
        while chunk := await proc.stdout.read(CHUNK):
            yield chunk
        if await proc.wait() != 0:
            problem = (await errors).decode(errors="replace").strip()
            raise ValidationError(f"cannot archive commit {sha[:7]} of the app: {problem}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        errors.cancel()
