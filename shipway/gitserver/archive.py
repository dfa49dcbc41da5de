"""The tree of one commit as a tar stream from `git archive`, cut off past a size limit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

from shipway.errors import ServiceError, TooLarge

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
