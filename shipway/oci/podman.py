"""podman, as shipway runs it: Debian's podman with runc, storage of its own per data dir.

Every call names the runtime (runc: crun fails on hybrid cgroups), the storage (DATA/images),
a run root of its own and cgroupfs, so two shipways on one machine never see each other's
images or containers, and nothing depends on systemd or the user's containers.conf.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipway import children
from shipway.errors import ShipwayError

#: What a machine needs for Dockerfile builds and image releases, as Debian names it.
PACKAGES = "podman runc"
#: Limits podman cannot infer on this kernel: without them `build` and `run` fail.
ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
#: Labels every image and container of shipway's carries.
APP_LABEL = "io.shipway.app"
BUILD_LABEL = "io.shipway.build"
#: The app's id: names may repeat across organizations, ids never.
APP_ID_LABEL = "io.shipway.app-id"
#: The repository of the images releases run: one tag per build.
REPOSITORY = "localhost/shipway/"


def digest(image_id: str) -> str:
    """IMAGE_ID as shipway names an image: `sha256:<hex>`, however podman printed it."""
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


def build_tag(app: str, build: int | str) -> str:
    """The name of the image build BUILD of APP made: `localhost/shipway/web:build-7`."""
    return f"{REPOSITORY}{app}:build-{build}"


class PodmanError(ShipwayError):
    """Raised when podman refuses or fails; the message is podman's own last words."""

    code = "podman_error"


def missing() -> str | None:
    """What this machine lacks to run podman (a sentence naming the packages), or None."""
    absent = [name for name in ("podman", "runc") if shutil.which(name) is None]
    if not absent:
        return None
    return (
        f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed: "
        f"run `apt-get install {PACKAGES}`"
    )


class Podman:
    """podman over the image storage of one data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "images" / "storage"
        self.runroot = _runroot(data_dir)

    def argv(self, *args: str) -> list[str]:
        """The podman command line for ARGS, with shipway's global options."""
        return [
            shutil.which("podman") or "podman",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--runtime",
            shutil.which("runc") or "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            *args,
        ]

    async def run(
        self,
        *args: str,
        timeout: float | None = 120.0,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> str:
        """Run podman ARGS to the end and return its output; PodmanError says why it failed.
        ENV is added to podman's environment (where `--env NAME` takes NAME's value from);
        CWD is where it runs (conmon, which podman starts, writes a file there on an OOM
        kill)."""
        proc = await self._spawn(args, children.PIPE, env=env, cwd=cwd)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except (TimeoutError, asyncio.CancelledError):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            await self.settle()
            raise PodmanError(said(err.decode(errors="replace")) or f"podman {args[0]} failed")
        return out.decode(errors="replace")

    async def _spawn(
        self,
        args: tuple[str, ...],
        stderr: int,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> children.Child:
        problem = missing()
        if problem is not None:
            raise PodmanError(problem)
        return await children.start(
            *self.argv(*args),
            stdin=children.DEVNULL,
            stdout=children.PIPE,
            stderr=stderr,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
        )

    async def settle(self) -> None:
        """podman 4.3 leaves its storage's overlay mounted when a command fails; the next one
        that succeeds unmounts it, so that the data dir can be moved or deleted."""
        proc = await children.start(
            *self.argv("images", "--quiet"),
            stdin=children.DEVNULL,
            stdout=children.DEVNULL,
            stderr=children.DEVNULL,
        )
        await proc.wait()

    async def json(self, *args: str) -> Any:
        """Run podman ARGS, whose output is JSON, and parse it."""
        return json.loads(await self.run(*args) or "null")

    async def stream(self, *args: str, line: Callable[[str], Any]) -> int:
        """Run podman ARGS, its output and errors line by line to LINE, and return its exit
        code."""
        proc = await self._spawn(args, children.STDOUT)
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                await _maybe_await(line(raw.decode(errors="replace").rstrip("\r\n")))
            return await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def said(stderr: str) -> str:
    """podman's error, without its "Error: " prefix: the last line that says something."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1].removeprefix("Error: ")


def _runroot(data_dir: Path) -> Path:
    """Where podman keeps its state while it runs: short (it makes sockets there), private to
    this data dir, and on a tmpfs where there is one."""
    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    if os.geteuid() == 0:
        return Path("/run/shipway/podman") / tag
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/shipway-{os.getuid()}"
    return Path(base) / "shipway-podman" / tag


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value
