"""The build step: the commands that turn an app's source into what it serves, such as a Node
app's `npm run build` or shipway.yml's build.commands. Each runs in a sandbox over the source,
with the dependency layer mounted read-only where the app sees it at run time and the PATH an
instance has, so it runs the app's own tools; what it writes into the source tree goes into
the app layer."""

from __future__ import annotations

from pathlib import Path

from shipway.builder.stacks import Stack
from shipway.releases.manifest import stack_environment
from shipway.sandbox import Limits, Mount, SandboxSpec
from shipway.sandbox.outcome import describe_exit


def commands(stack: Stack, declared: tuple[str, ...]) -> tuple[str, ...]:
    """shipway.yml's build.commands when it names some, else the stack's own."""
    return declared or stack.build


def environment(stack: Stack) -> dict[str, str]:
    """What an instance of STACK has, so a build command finds the same interpreter and tools."""
    env = stack_environment(stack.name)
    if stack.name == "node":
        env.update(
            npm_config_update_notifier="false",
            # Tools that cache in node_modules/.cache (find-cache-dir) cannot: it is read-only.
            CACHE_DIR="/tmp/cache",
        )
    return env


def spec(
    stack: Stack,
    command: str,
    source: Path,
    deps_layer: Path | None,
    *,
    network: bool,
    limits: Limits,
) -> SandboxSpec:
    """COMMAND run by the shell over SOURCE, with DEPS_LAYER where instances have it."""
    mounts = []
    where = stack.run_mount or stack.deps_mount
    if deps_layer is not None and where is not None:
        mounts.append(Mount(deps_layer, where))
    return SandboxSpec(
        argv=["/bin/sh", "-c", command],
        workspace=source,
        mounts=mounts,
        env=environment(stack),
        network=network,
        limits=limits,
    )


def failure(command: str, exit_code: int, reason: str) -> str:
    """Why the build step failed: `exit N`, or the limit it hit or the signal that killed it."""
    plain = exit_code <= 128 and reason == describe_exit(exit_code)
    return f"build step `{command}` failed: {f'exit {exit_code}' if plain else reason}"
