"""The tree of one commit as a tar from `git archive`, cut off past a size limit: for a push
(read from the push's quarantined objects while its pre-receive hook runs) and for a commit a
webhook fetched."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from shipway.errors import ServiceError, TooLarge, ValidationError

CHUNK = 64 * 1024
MIB = 1024 * 1024

#: How git names the directory that holds a push's objects until its pre-receive hook accepts.
QUARANTINE = re.compile(r"(tmp_objdir-)?incoming-[A-Za-z0-9_-]{1,64}")


def stream(
    sha: str, limit: int | None, git_dir: Path, env: dict[str, str] | None = None
) -> Iterator[bytes]:
    """The tar of SHA's tree, chunk by chunk, from GIT_DIR (with ENV, git's own environment).
    TooLarge once past LIMIT bytes; ServiceError if git fails."""
    proc = subprocess.Popen(
        ["git", "--git-dir", str(git_dir), "archive", "--format=tar", sha],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
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


def write(repo: Path, sha: str, dest: Path, limit: int, env: dict[str, str] | None = None) -> Path:
    """Write the tar of SHA's tree in the bare REPO to DEST; nothing is left there on failure."""
    try:
        with dest.open("wb") as out:
            for chunk in stream(sha, limit, git_dir=repo, env=env):
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def objects_env(repo: Path, quarantine: str | None = None) -> dict[str, str]:
    """git's environment to read the objects of the app's bare REPO with; with QUARANTINE (a
    push's quarantine directory in REPO/objects, while its pre-receive hook runs), the objects
    of that push too. ValidationError if REPO lacks the quarantine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    if quarantine is not None:
        held = repo / "objects" / quarantine
        if not QUARANTINE.fullmatch(quarantine) or held.is_symlink() or not held.is_dir():
            raise ValidationError(f"no push is being received into {quarantine!r}")
        env.update(
            GIT_OBJECT_DIRECTORY=str(held), GIT_ALTERNATE_OBJECT_DIRECTORIES=str(repo / "objects")
        )
    return env


def pushed(repo: Path, sha: str, dest: Path, limit: int, quarantine: str | None = None) -> Path:
    """Write the tar of a pushed commit SHA of the app's bare REPO to DEST, reading the objects
    of the push received into QUARANTINE too (objects_env). ValidationError if REPO lacks the
    quarantine or the commit."""
    env = objects_env(repo, quarantine)
    found = subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "-e", f"{sha}^{{commit}}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        problem = found.stderr.strip() or "no such commit"
        raise ValidationError(f"cannot archive commit {sha[:7]} of the app: {problem}")
    return write(repo, sha, dest, limit, env)
