"""Seeds: the tree a stack's dependency install starts from, made once per machine.

A Python app's dependencies go into a virtualenv at /deps/venv. Making one is the same work
for every app of a runtime (`python -m venv` installs pip and setuptools into it, a second or
more of a cold build), so it is done once per runtime, in a sandbox, and the result is copied
into each install's directory before the install runs. A seed is made by shipway's own
command from the machine's runtime, with no app's file and no network, so builds of every
organization may start from it: what differs between them is what their install adds, and
that stays in their organization's layers.

DATA/seeds/<key>/ holds the tree, where the key covers the command, the runtime and the
runtime's executable; a new runtime's executable makes a new seed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from shipway import children
from shipway.builder.stacks import Stack
from shipway.sandbox import Limits, Mount, SandboxSpec
from shipway.sandbox import run as run_sandbox

#: A seed's making runs no app code and needs no network; past this it has hung.
MAKE_SECONDS = 300.0


class SeedFailed(Exception):
    """Raised when a stack's seed cannot be made or copied; says why."""


class Seeds:
    """DATA/seeds: one tree per stack seed command and runtime executable."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "seeds"

    async def plant(self, stack: Stack, into: Path, log: Callable[[str], Awaitable[None]]) -> None:
        """Fill INTO, the install's directory, with STACK's seed, made first if this machine has
        none yet (LOG hears of that)."""
        assert stack.seed and stack.deps_mount is not None
        tree = self.root / _key(stack)
        if not tree.is_dir():
            await log(f"Preparing {stack.runtime} for this machine's builds (once)")
            try:
                await self._make(stack, tree)
            except OSError as e:
                raise SeedFailed(f"cannot prepare {stack.runtime}: {e}") from e
        copying = await children.start(
            "cp", "-a", "--reflink=auto", f"{tree}/.", str(into), stderr=children.PIPE
        )
        _, said = await copying.communicate()
        if copying.returncode != 0:
            raise SeedFailed(f"cannot copy {stack.runtime}'s seed: {said.decode().strip()}")

    async def _make(self, stack: Stack, tree: Path) -> None:
        """Run the seed command in a sandbox of its own into a staging tree, then move that into
        place; of two builds that make the same seed at once, the first to finish keeps its."""
        assert stack.deps_mount is not None
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".in-"))
        try:
            (staging / "tree").mkdir()
            (staging / "workspace").mkdir()
            spec = SandboxSpec(
                argv=list(stack.seed),
                workspace=staging / "workspace",
                mounts=[Mount(staging / "tree", stack.deps_mount, writable=True)],
                network=False,
                limits=Limits(wall_seconds=MAKE_SECONDS),
            )
            said: list[str] = []
            result = await run_sandbox(spec, lambda line: said.append(line))
            if result.exit_code != 0 or result.reason:
                why = result.reason or f"exit code {result.exit_code}"
                if said:
                    why = f"{why}: {said[-1]}"
                raise SeedFailed(f"cannot prepare {stack.runtime}: {why}")
            try:
                os.rename(staging / "tree", tree)
            except OSError:
                if not tree.is_dir():
                    raise
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)


def _key(stack: Stack) -> str:
    executable = Path(stack.seed[0]).resolve()
    found = executable.stat()
    what = [list(stack.seed), stack.runtime, str(executable), found.st_size, found.st_mtime_ns]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:32]
