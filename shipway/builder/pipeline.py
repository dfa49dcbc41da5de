"""One build: unpack the source, read what it says about itself, detect the stack, and hand
it to the stack's backend (sandbox layers, or a podman image), which describes the result as a
release manifest."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from shipway.builder import appfile, procfile
from shipway.builder.backends import BuildFailed, BuildRequest, Job, Log, Steps
from shipway.builder.backends import oci as oci_backend
from shipway.builder.backends import sandbox as sandbox_backend
from shipway.builder.stacks import detect
from shipway.errors import ValidationError
from shipway.functions import manifest as manifests
from shipway.releases.manifest import Manifest

__all__ = ["BuildFailed", "BuildRequest", "BuildResult", "Log", "build", "unpack"]


@dataclass
class BuildResult:
    manifest: Manifest
    cache_warm: bool
    steps: dict[str, float] = field(default_factory=dict)


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
    work = Path(tempfile.mkdtemp(prefix=f"build-{request.build_id}-", dir=_tmp(data_dir)))
    try:
        source = work / "source"
        source.mkdir()
        with steps.step("checkout"):
            await asyncio.to_thread(unpack, request.source, source)
        try:
            settings = await asyncio.to_thread(appfile.read, source)
            stack = detect(source, settings.dockerfile)
            processes = _processes(source)
            await asyncio.to_thread(manifests.check, list(settings.functions))
        except ValidationError as e:
            raise BuildFailed(e.message) from e
        await log(f"-----> {stack.name} app detected ({stack.runtime})")
        if settings.functions:
            names = ", ".join(f"{f.name} ({f.runtime})" for f in settings.functions)
            await log(f"-----> Functions in {appfile.NAME}: {names}; live with production")
        job = Job(request, stack, settings, processes, source, work, data_dir, log, steps)
        backend = oci_backend if stack.runtime == oci_backend.RUNTIME else sandbox_backend
        built = await backend.build(job)
        return BuildResult(
            manifest=built.manifest, cache_warm=built.cache_warm, steps=steps.seconds
        )
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
