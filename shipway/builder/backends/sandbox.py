"""The sandbox backend: the dependency layer built (or reused) in a bubblewrap sandbox, the
build step run over the source, and the source stored as the app layer."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from shipway.builder import buildstep
from shipway.builder.backends import BuildFailed, Built, Job, Log
from shipway.builder.cache import BuildCache, prune
from shipway.builder.seeds import SeedFailed, Seeds
from shipway.releases.layers import LayerStore
from shipway.releases.manifest import LayerRef, Manifest
from shipway.sandbox import Mount, SandboxResult, SandboxSpec
from shipway.sandbox import run as run_sandbox

#: Where each layer is mounted when the release runs.
APP_MOUNT = "/app"


async def build(job: Job) -> Built:
    layers = LayerStore(job.data_dir / "layers")
    settings, stack, steps = job.settings, job.stack, job.steps
    with steps.step("dependencies"):
        deps, warm = await _dependencies(job, layers, "dependencies" in settings.private)
    commands = buildstep.commands(stack, settings.commands)
    if commands:
        with steps.step("build"):
            deps_layer = layers.path(deps) if deps is not None else None
            await _build_step(job, commands, deps_layer, "build" in settings.private)
    with steps.step("app_layer"):
        app_digest = await asyncio.to_thread(layers.add, job.source)
    await job.log(f"-----> App layer {app_digest[:19]}")

    refs = [LayerRef(digest=app_digest, role="app", mount=APP_MOUNT)]
    if deps is not None and stack.deps_mount is not None:
        mount = stack.run_mount or stack.deps_mount
        refs.append(LayerRef(digest=deps, role="deps", mount=mount))
    manifest = Manifest(
        app=job.request.app,
        stack=stack.name,
        runtime=stack.runtime,
        layers=tuple(refs),
        processes=job.processes,
        static_root=stack.static_root,
        source_sha=job.request.source_sha,
        build_id=job.request.build_id,
    )
    return Built(manifest=manifest, cache_warm=warm)


async def _dependencies(job: Job, layers: LayerStore, private: bool) -> tuple[str | None, bool]:
    """The dependency layer's digest, and whether it was reused as is (built earlier by any
    app of the organization); with PRIVATE, the install's output shows as one placeholder
    line."""
    stack, log = job.stack, job.log
    key = stack.deps_key(job.source)
    if key is None:
        return None, False
    cache = _cache(job)
    cache.prepare()
    known = await _reused(job, cache, layers, key)
    if known is not None:
        return known, True

    async with cache.installing(key, job.work / "downloads", _as_step(log)) as downloads:
        # The install waited for may have built this very layer.
        known = await _reused(job, cache, layers, key)
        if known is not None:
            return known, True
        await log(f"-----> Installing dependencies from {stack.lockfile}")
        await asyncio.to_thread(prune, cache.root.parent.parent)
        deps_dir, seconds = await _install(job, downloads, private)
        digest = await asyncio.to_thread(layers.add, deps_dir)
        cache.remember(key, digest)
    await log(f"-----> Dependency layer {digest[:19]} ({seconds:.1f}s)")
    return digest, False


def _as_step(log: Log) -> Callable[[str], Awaitable[None]]:
    """LOG for lines that read as steps of the build ("-----> LINE")."""

    async def step(line: str) -> None:
        await log(f"-----> {line}")

    return step


def _cache(job: Job) -> BuildCache:
    """The organization's cache; an app's own for a build queued without its organization."""
    request = job.request
    if request.organization_id is None:
        return BuildCache.of_app(job.data_dir, request.app_id)
    return BuildCache.of_organization(job.data_dir, request.organization_id)


async def _reused(job: Job, cache: BuildCache, layers: LayerStore, key: str) -> str | None:
    """The layer built for KEY, when it is still there."""
    known = cache.layer_for(key)
    if known is None or not layers.has(known):
        return None
    lockfile = job.stack.lockfile
    await job.log(f"-----> Dependencies unchanged ({lockfile}): reusing layer {known[:19]}")
    return known


async def _install(job: Job, downloads: Path, private: bool) -> tuple[Path, float]:
    """Run the stack's install in a sandbox, keeping its downloads in DOWNLOADS; the
    directory it filled, and its seconds."""
    stack, source, request = job.stack, job.source, job.request
    workspace = job.work / "deps-workspace"
    workspace.mkdir()
    for name in stack.inputs:
        shutil.copy2(source / name, workspace / name)
    deps_dir = job.work / "deps"
    deps_dir.mkdir()
    assert stack.deps_mount is not None
    if stack.seed:
        try:
            await Seeds(job.data_dir).plant(stack, deps_dir, _as_step(job.log))
        except SeedFailed as e:
            raise BuildFailed(str(e)) from e
    mounts = [Mount(downloads, "/cache", writable=True)]
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
    seconds = 0.0
    if spec.argv:
        result = await _run_logged(spec, job.log, private)
        if result.exit_code != 0 or result.reason:
            reason = result.reason or "non-zero exit"
            raise BuildFailed(f"installing dependencies failed: {reason}")
        seconds = result.duration
    for name, target in stack.links:
        (deps_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (deps_dir / name).unlink(missing_ok=True)
        (deps_dir / name).symlink_to(target)
    return deps_dir, seconds


async def _build_step(
    job: Job, commands: tuple[str, ...], deps_layer: Path | None, private: bool
) -> None:
    """Run the build COMMANDS over the source, in order; with PRIVATE, their output shows as a
    placeholder. The first that fails fails the build."""
    request = job.request
    for command in commands:
        await job.log(f"-----> Running build: {command}")
        spec = buildstep.spec(
            job.stack,
            command,
            job.source,
            deps_layer,
            network=request.network,
            limits=request.limits,
        )
        result = await _run_logged(spec, job.log, private)
        if result.exit_code != 0 or result.reason:
            reason = result.reason or "non-zero exit"
            raise BuildFailed(buildstep.failure(command, result.exit_code, reason))
        await job.log(f"-----> Build step done ({result.duration:.1f}s)")


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
