"""One build: unpack the source, detect the stack, reuse or build the dependency layer in a
sandbox, run the build step over the source, store the app layer, and describe the result as
a release manifest."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shipway.builder import appfile, buildstep, procfile
from shipway.builder.cache import AppCache, prune
from shipway.builder.stacks import Stack, detect
from shipway.errors import ShipwayError, ValidationError
from shipway.functions import manifest as manifests
from shipway.releases.layers import LayerStore
from shipway.releases.manifest import LayerRef, Manifest
from shipway.sandbox import Limits, Mount, SandboxResult, SandboxSpec
from shipway.sandbox import run as run_sandbox


class Log(Protocol):
    """Where build lines go (LogWriter.write); a private line shows as a placeholder."""

    async def __call__(self, line: str, *, private: bool = False) -> None: ...


#: Where each layer is mounted when the release runs.
APP_MOUNT = "/app"


class BuildFailed(ShipwayError):
    """Raised when the build itself fails (bad source, install error, a limit hit): not retried."""

    code = "build_failed"


@dataclass(frozen=True)
class BuildRequest:
    build_id: int
    app_id: int
    app: str
    source: Path
    source_sha: str | None = None
    network: bool = True
    limits: Limits = field(default_factory=Limits)


@dataclass
class BuildResult:
    manifest: Manifest
    cache_warm: bool
    steps: dict[str, float] = field(default_factory=dict)


class Steps:
    """Wall-clock seconds spent in each named step, for the build record and the benchmark."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 4)


def unpack(archive: Path, into: Path) -> None:
    """Extract a (possibly gzipped) tar with the "data" filter: no absolute paths, no escapes."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise BuildFailed(f"the source archive cannot be unpacked: {e}") from e


async def build(request: BuildRequest, data_dir: Path, log: Log) -> BuildResult:
    """Run the whole build; raises BuildFailed with a reason the user can act on."""
    steps = Steps()
    layers = LayerStore(data_dir / "layers")
    cache = AppCache(data_dir, request.app_id)
    work = Path(tempfile.mkdtemp(prefix=f"build-{request.build_id}-", dir=_tmp(data_dir)))
    try:
        source = work / "source"
        source.mkdir()
        with steps.step("checkout"):
            await asyncio.to_thread(unpack, request.source, source)
        try:
            stack = detect(source)
            processes = _processes(source)
            settings = await asyncio.to_thread(appfile.read, source)
            await asyncio.to_thread(manifests.check, list(settings.functions))
        except ValidationError as e:
            raise BuildFailed(e.message) from e
        await log(f"-----> {stack.name} app detected ({stack.runtime})")
        if settings.functions:
            names = ", ".join(f"{f.name} ({f.runtime})" for f in settings.functions)
            await log(f"-----> Functions in {appfile.NAME}: {names}; live with production")

        with steps.step("dependencies"):
            private = "dependencies" in settings.private
            deps, warm = await _dependencies(
                request, stack, source, work, cache, layers, log, private
            )
        commands = buildstep.commands(stack, settings.commands)
        if commands:
            with steps.step("build"):
                deps_layer = layers.path(deps) if deps is not None else None
                private = "build" in settings.private
                await _build_step(request, stack, commands, source, deps_layer, log, private)
        with steps.step("app_layer"):
            app_digest = await asyncio.to_thread(layers.add, source)
        await log(f"-----> App layer {app_digest[:19]}")

        refs = [LayerRef(digest=app_digest, role="app", mount=APP_MOUNT)]
        if deps is not None and stack.deps_mount is not None:
            mount = stack.run_mount or stack.deps_mount
            refs.append(LayerRef(digest=deps, role="deps", mount=mount))
        manifest = Manifest(
            app=request.app,
            stack=stack.name,
            runtime=stack.runtime,
            layers=tuple(refs),
            processes=processes,
            static_root=stack.static_root,
            source_sha=request.source_sha,
            build_id=request.build_id,
        )
        return BuildResult(manifest=manifest, cache_warm=warm, steps=steps.seconds)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def _tmp(data_dir: Path) -> Path:
    path = data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _processes(source: Path) -> dict[str, str]:
    path = source / "Procfile"
    if not path.is_file():
        return {}
    try:
        return procfile.parse(path.read_text())
    except UnicodeDecodeError as e:
        raise ValidationError("Procfile is not UTF-8 text") from e


async def _dependencies(
    request: BuildRequest,
    stack: Stack,
    source: Path,
    work: Path,
    cache: AppCache,
    layers: LayerStore,
    log: Log,
    private: bool,
) -> tuple[str | None, bool]:
    """The dependency layer's digest, and whether it was reused as is; with PRIVATE, the
    install's output shows as one placeholder line."""
    key = stack.deps_key(source)
    if key is None:
        return None, False
    cache.prepare()
    known = cache.layer_for(key)
    if known is not None and layers.has(known):
        await log(f"-----> Dependencies unchanged ({stack.lockfile}): reusing layer {known[:19]}")
        return known, True

    await log(f"-----> Installing dependencies from {stack.lockfile}")
    await asyncio.to_thread(prune, cache.root.parent.parent)
    workspace = work / "deps-workspace"
    workspace.mkdir()
    for name in stack.inputs:
        shutil.copy2(source / name, workspace / name)
    deps_dir = work / "deps"
    deps_dir.mkdir()
    assert stack.deps_mount is not None
    mounts = [Mount(cache.downloads, "/cache", writable=True)]
    if stack.deps_mount.startswith("/workspace/"):
        (workspace / stack.deps_mount.removeprefix("/workspace/")).mkdir(parents=True)
    mounts.append(Mount(deps_dir, stack.deps_mount, writable=True))
    spec = SandboxSpec(
        argv=list(stack.install),
        workspace=workspace,
        mounts=mounts,
        env={"PIP_DISABLE_PIP_VERSION_CHECK": "1", "npm_config_update_notifier": "false"},
        network=request.network,
        limits=request.limits,
    )
    result = await _run_logged(spec, log, private)
    if result.exit_code != 0 or result.reason:
        raise BuildFailed(f"installing dependencies failed: {result.reason or 'non-zero exit'}")
    for name, target in stack.links:
        (deps_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (deps_dir / name).unlink(missing_ok=True)
        (deps_dir / name).symlink_to(target)
    digest = await asyncio.to_thread(layers.add, deps_dir)
    cache.remember(key, digest)
    await log(f"-----> Dependency layer {digest[:19]} ({result.duration:.1f}s)")
    return digest, False


async def _build_step(
    request: BuildRequest,
    stack: Stack,
    commands: tuple[str, ...],
    source: Path,
    deps_layer: Path | None,
    log: Log,
    private: bool,
) -> None:
    """Run the build COMMANDS over SOURCE, in order; with PRIVATE, their output shows as a
    placeholder. The first that fails fails the build."""
    for command in commands:
        await log(f"-----> Running build: {command}")
        spec = buildstep.spec(
            stack, command, source, deps_layer, network=request.network, limits=request.limits
        )
        result = await _run_logged(spec, log, private)
        if result.exit_code != 0 or result.reason:
            reason = result.reason or "non-zero exit"
            raise BuildFailed(buildstep.failure(command, result.exit_code, reason))
        await log(f"-----> Build step done ({result.duration:.1f}s)")


async def _run_logged(spec: SandboxSpec, log: Log, private: bool) -> SandboxResult:
    """Run SPEC in a sandbox, its output line by line to LOG, in order."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    async def forward() -> None:
        while (line := await lines.get()) is not None:
            await log(line, private=private)

    forwarder = asyncio.create_task(forward())
    try:
        return await run_sandbox(spec, lines.put_nowait)
    finally:
        lines.put_nowait(None)
        await forwarder
