"""The oci backend: the app's Dockerfile built by podman into an image that the release runs.

The image stays in the builder's storage, named by its digest (podman's image id) and
labelled with its app and build; podman's layer cache makes a rebuild with unchanged
dependencies reuse those layers as they are. The stages' base images are resolved first
(pulled where a registry answers, else they must have been made or imported), pinned to the
digest found, and shown in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from pathlib import Path
from typing import Any

from shipway.builder.backends import BuildFailed, Built, Job
from shipway.builder.cache import BuildCache
from shipway.builder.stacks import OCI
from shipway.oci import container, dockerfile, prune, walled
from shipway.oci.podman import (
    APP_ID_LABEL,
    APP_LABEL,
    BUILD_LABEL,
    ULIMITS,
    Podman,
    PodmanError,
    build_tag,
    digest,
    missing,
)
from shipway.releases.manifest import DOCKERFILE, Manifest
from shipway.sandbox import Limits, network
from shipway.sandbox.cgroups import Cgroup
from shipway.sandbox.identity import lease
from shipway.sandbox.spec import SandboxError

RUNTIME = OCI
#: The Dockerfile found without shipway.yml naming one.
DEFAULT = "Dockerfile"
#: What podman says when a step is taken from its cache.
_CACHED = "Using cache"
#: Seconds a base image's pull may take.
PULL_SECONDS = 600.0
#: The bases shipway can make itself (`shipway images base`).
_MADE_HERE = ("debian:bookworm", "debian:bookworm-slim")


async def build(job: Job) -> Built:
    problem = missing()
    if problem is not None:
        raise BuildFailed(f"this app builds from its Dockerfile with podman, but {problem}")
    podman = Podman(job.data_dir)
    settings, request = job.settings, job.request
    name = settings.dockerfile or DEFAULT
    context = _inside(job.source, settings.context, "build.context")
    if not context.is_dir():
        raise BuildFailed(f"the build context {settings.context} is not a directory")
    try:
        text = (job.source / name).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BuildFailed(f"{name} cannot be read: {e}") from e

    with job.steps.step("bases"):
        resolved = await _resolve_bases(podman, job, dockerfile.bases(text))
    # Each stage labelled with its app from the start: the app's layers are its own.
    pinned = job.work / "Dockerfile.pinned"
    scope = {APP_LABEL: request.app, APP_ID_LABEL: str(request.app_id)}
    text = dockerfile.scoped(dockerfile.pin(text, resolved), scope)
    build_label = {BUILD_LABEL: str(request.build_id)}
    if settings.target is None:
        # A LABEL step after the last: one commit, where --label is a step of its own more.
        pinned.write_text(dockerfile.labelled(text, build_label))
    else:
        pinned.write_text(text)

    passed = await _build_args(job)
    iidfile = job.work / "image-id"
    tag = build_tag(request.app, request.build_id)
    args = [
        "build",
        "--layers",
        "--pull=never",
        "--file",
        str(pinned),
        "--iidfile",
        str(iidfile),
        "--tag",
        tag,
        *ULIMITS,
        *passed,
        *(["--target", settings.target] if settings.target else []),
        *(f"--label={key}={value}" for key, value in build_label.items() if settings.target),
    ]
    cached = 0
    error = ""

    async def line(text: str) -> None:
        nonlocal cached, error
        if _CACHED in text:
            cached += 1
        if text.startswith("Error: "):
            error = _podman_error(text)
        await job.log(text, private="build" in settings.private)

    await job.log(f"-----> Building {name} with podman")
    # podman keeps RUN --mount=type=cache directories in its TMPDIR: one per app.
    tmpdir = BuildCache.of_app(job.data_dir, request.app_id).root / "podman-tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    limits = request.limits
    with job.steps.step("build"), lease() as ident:
        group, parent = container.slot_cgroup(ident.slot, limits)
        confined = _confinement(limits, parent)
        try:
            async with walled.build_network(podman, request.network) as (reach, run):
                argv = podman.argv(*args, *confined, f"--network={reach}", str(context))
                building = asyncio.ensure_future(run(argv, line, {"TMPDIR": str(tmpdir)}))
                try:
                    timeout = None if math.isinf(limits.wall_seconds) else limits.wall_seconds
                    await asyncio.wait({building}, timeout=timeout)
                    if not building.done():
                        raise BuildFailed(f"the build timed out after {limits.wall_seconds:g} s")
                finally:
                    await _end(building, group)
                code = building.result()
        except SandboxError as e:
            raise BuildFailed(e.message) from e
        finally:
            reached = _reached(group, limits)
            if group is not None:
                await group.dispose(5.0)
    if code != 0:
        said = error or f"exit code {code}"
        raise BuildFailed(f"podman build failed: {said}{f' ({reached})' if reached else ''}")
    image = digest(iidfile.read_text().strip())
    with job.steps.step("inspect"):
        config = await _inspect(podman, image)
    size = config.get("Size") or 0
    await job.log(f"-----> Image {image[:19]} ({size / 1e6:.0f} MB), {tag}")
    port = _exposed_port(config)
    if not job.processes and not _runs_something(config):
        raise BuildFailed("the image has no CMD or ENTRYPOINT and the app no Procfile")
    with job.steps.step("prune"):
        await prune.after_build(podman, None, job.log)
    manifest = Manifest(
        app=request.app,
        stack=DOCKERFILE,
        runtime=OCI,
        layers=(),
        processes=job.processes,
        source_sha=request.source_sha,
        build_id=request.build_id,
        image=image,
        port=port,
        bases=resolved,
    )
    return Built(manifest=manifest, cache_warm=cached > 0)


async def _end(building: asyncio.Future[int], group: Cgroup | None) -> None:
    """Stop a build that still runs (out of time, or cancelled): its steps killed first, so
    that podman fails it and tidies up after it (unmounts, removes its working container)."""
    if building.done():
        return
    if group is not None:
        group.kill()
        await asyncio.wait({building}, timeout=walled.STOP_SECONDS)
    building.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await building


def _confinement(limits: Limits, parent: str | None) -> list[str]:
    """podman's options that hold a build's RUN steps: below the slot's cgroup, whose limits
    cover them (runc makes and removes one below it for each step), else podman's memory
    limit.

    RUN steps run as root, with podman's default capabilities and seccomp filter, as `docker
    build`'s do: podman 4.3 cannot give a cache mount (RUN --mount=type=cache) to a step whose
    root is mapped to another uid range."""
    if parent is not None:
        return ["--cgroup-parent", f"{parent}/build"]
    return [f"--memory={limits.memory_mb}m", f"--memory-swap={limits.memory_mb}m"]


def _reached(group: Cgroup | None, limits: Limits) -> str | None:
    """Which of the slot's limits the build reached, if any."""
    if group is not None and group.reached_memory_limit():
        return f"it reached its memory limit of {limits.memory_mb} MiB"
    if group is not None and group.reached_process_limit():
        return f"it reached its process limit of {limits.processes}"
    return None


async def _build_args(job: Job) -> list[str]:
    """podman's options for the config vars shipway.yml's build.args names: a plain one as a
    build arg, a secret one as a build secret (a file of the build's own, never an arg, which
    the image's history would keep)."""
    config = job.request.config
    args, secrets, unset = [], [], []
    for name in job.settings.args:
        if name not in config.values:
            unset.append(name)
        elif name in config.secret:
            path = job.work / "secrets" / name
            path.parent.mkdir(mode=0o700, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(config.values[name])
            args += ["--secret", f"id={name},src={path}"]
            secrets.append(name)
        else:
            args += ["--build-arg", f"{name}={config.values[name]}"]
    plain = [n for n in job.settings.args if n not in unset and n not in secrets]
    if plain:
        await job.log(f"-----> Build args: {', '.join(plain)}")
    if secrets:
        mounts = ", ".join(f"RUN --mount=type=secret,id={n}" for n in secrets)
        await job.log(f"-----> Build secrets: {', '.join(secrets)} ({mounts})")
    if unset:
        await job.log(
            f"-----> Not set on the app, so the Dockerfile's defaults apply: {', '.join(unset)}"
        )
    return args


def _podman_error(line: str) -> str:
    """What podman's error line says, without its prefix and the Go structure it may dump."""
    return line.removeprefix("Error: ").split(" &imagebuilder.")[0].strip()


def _inside(source: Path, relative: str, key: str) -> Path:
    path = (source / relative).resolve()
    if not path.is_relative_to(source.resolve()):
        raise BuildFailed(f"shipway.yml: {key} must be a path inside the app's source")
    return path


async def _resolve_bases(podman: Podman, job: Job, bases: list[dockerfile.Base]) -> dict[str, str]:
    """Each base's image id, pulling those not here; BuildFailed names one that cannot be had."""
    resolved = {}
    for base in bases:
        found = await _image_id(podman, base.ref)
        if found is None:
            await _pull(podman, job, base.ref)
            found = await _image_id(podman, base.ref)
            if found is None:
                raise BuildFailed(_unavailable(base.ref, "podman pulled nothing"))
        resolved[base.ref] = found
        await job.log(f"-----> FROM {base.ref}: {found}")
        if base.floating:
            await job.log(
                f"-----> Warning: {base.ref} names a tag that moves; this build used {found[:19]}. "
                f"Pin it (FROM {base.ref.split('@')[0]}@sha256:…) to build the same base again"
            )
    return resolved


async def _pull(podman: Podman, job: Job, ref: str) -> None:
    """Pull REF from its registry, from the build's walled network as its RUN steps reach
    out (a Dockerfile's FROM never makes the builder connect where a sandbox may not)."""
    if not job.request.network:
        raise BuildFailed(_unavailable(ref, "the build has no network"))
    if os.geteuid() != 0 and network.require() is not None:
        # podman pulls from its own network, which only root can wall off as a build's.
        raise BuildFailed(_unavailable(ref, "shipway pulls bases only when it runs as root"))
    await job.log(f"-----> Pulling {ref}")
    said: list[str] = []

    async def line(text: str) -> None:
        said.append(text)

    try:
        code = await asyncio.wait_for(
            walled.stream(podman.argv("pull", "--quiet", ref), line), PULL_SECONDS
        )
    except TimeoutError:
        raise BuildFailed(_unavailable(ref, f"no answer within {PULL_SECONDS:g} s")) from None
    except SandboxError as e:
        raise BuildFailed(e.message) from e
    if code != 0:
        errors = [_podman_error(t) for t in said if t.startswith("Error: ")]
        raise BuildFailed(_unavailable(ref, errors[-1] if errors else f"exit code {code}"))


def _unavailable(ref: str, why: str) -> str:
    how = "import it with `shipway images import FILE.tar` (from `docker save` or `podman save`)"
    if ref.removeprefix("docker.io/").removeprefix("library/") in _MADE_HERE:
        how = f"make it from Debian's packages with `shipway images base {ref}`, or {how}"
    return f"FROM {ref}: the image is not on this builder and cannot be pulled ({why}); {how}"


async def _image_id(podman: Podman, ref: str) -> str | None:
    try:
        found = await podman.json("image", "inspect", ref)
    except PodmanError:
        return None
    return digest(found[0]["Id"]) if found else None


async def _inspect(podman: Podman, image: str) -> dict[str, Any]:
    found = await podman.json("image", "inspect", image)
    if not found:
        raise BuildFailed(f"podman built {image}, but cannot find it")
    data: dict[str, Any] = found[0]
    return data


def _exposed_port(image: dict[str, Any]) -> int | None:
    """The one TCP port the image EXPOSEs, if it exposes exactly one."""
    exposed = (image.get("Config") or {}).get("ExposedPorts") or {}
    ports = [int(p.split("/")[0]) for p in exposed if p.endswith("/tcp") and p[:-4].isdigit()]
    return ports[0] if len(ports) == 1 else None


def _runs_something(image: dict[str, Any]) -> bool:
    config = image.get("Config") or {}
    return bool(config.get("Cmd") or config.get("Entrypoint"))
