"""The build step's commands, environment and failure messages; running it is test_pipeline's."""

from __future__ import annotations

from pathlib import Path

from shipway.builder import buildstep
from shipway.builder.stacks import Stack
from shipway.sandbox import Limits

NODE = Stack(
    name="node",
    runtime="v20.20.2",
    deps_mount="/workspace/node_modules",
    run_mount="/node_modules",
    build=("npm run build",),
)
PYTHON = Stack(name="python", runtime="Python 3.11.2", deps_mount="/deps")


def test_shipway_yml_commands_replace_the_stacks_own() -> None:
    assert buildstep.commands(NODE, ()) == ("npm run build",)
    assert buildstep.commands(NODE, ("make", "npm run build")) == ("make", "npm run build")
    assert buildstep.commands(PYTHON, ()) == ()


def test_the_dependency_layer_is_where_instances_have_it_with_their_path(tmp_path: Path) -> None:
    node = buildstep.spec(NODE, "npm run build", tmp_path, tmp_path, network=False, limits=Limits())
    [layer] = node.mounts
    assert (layer.target, layer.writable) == ("/node_modules", False)
    assert node.env["PATH"].startswith("/node_modules/.bin:")
    assert node.argv == ["/bin/sh", "-c", "npm run build"] and node.workspace == tmp_path
    python = buildstep.spec(
        PYTHON, "python x.py", tmp_path, tmp_path, network=True, limits=Limits()
    )
    assert [m.target for m in python.mounts] == ["/deps"]
    assert python.env["PATH"].startswith("/deps/venv/bin:")
    assert python.env["VIRTUAL_ENV"] == "/deps/venv" and python.network
    static = Stack(name="static", runtime="static", static_root=".")
    assert (
        buildstep.spec(static, "make", tmp_path, None, network=False, limits=Limits()).mounts == []
    )


def test_a_failure_says_exit_n_or_the_limit_or_signal() -> None:
    assert buildstep.failure("make", 2, "exited with code 2") == "build step `make` failed: exit 2"
    killed = "killed: memory limit of 2048 MiB exceeded"
    assert buildstep.failure("make", 137, killed) == f"build step `make` failed: {killed}"
    signal = "killed by SIGTERM (exit code 143)"
    assert buildstep.failure("make", 143, signal) == f"build step `make` failed: {signal}"
    limit = "process limit of 512 reached"
    assert buildstep.failure("make", 1, limit) == f"build step `make` failed: {limit}"
