"""Whole builds in real sandboxes, with real npm and a real virtualenv: the build step runs over
the source with the dependency layer where the app sees it, and what it writes is in the app
layer; a build step or a runtime the host lacks fails the build and says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipway.builder import runtimes, semver
from shipway.builder.pipeline import BuildFailed
from tests.builder.conftest import Builder, Log, node_app

#: A Node app without dependencies (npm ci needs no registry) whose build script writes
#: dist/index.html, saying whether it saw the dependency layer and its .bin on PATH.
BUILD_JS = """\
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
const seen = {
  layer: fs.existsSync("/node_modules/.package-lock.json"),
  bin: process.env.PATH.split(":").includes("/node_modules/.bin"),
  env: process.env.NODE_ENV,
};
fs.writeFileSync("dist/index.html", `<pre>${JSON.stringify(seen)}</pre>`);
console.log("wrote dist/index.html");
"""
NODE_APP = {
    **node_app("b", scripts={"build": "node build.js"}),
    "build.js": BUILD_JS,
    "server.js": "// serves dist/\n",
}
#: Writes where the Python that runs it lives, and its version.
WRITE_PREFIX = (
    "python -c \"import sys; open('built.txt', 'w').write(sys.prefix + ' ' + "
    "'.'.join(map(str, sys.version_info[:2])))\""
)


def host_python() -> semver.Version:
    version = runtimes.interpreter(runtimes.PYTHON).version
    assert version is not None, "the host's python3 reports no version"
    return version


async def test_a_node_apps_build_script_runs_and_its_output_is_in_the_app_layer(
    builder: Builder,
) -> None:
    log = Log()
    first = await builder.build(NODE_APP, log, network=True)
    built = (builder.layer(first, "app") / "dist" / "index.html").read_text()
    assert built == '<pre>{"layer":true,"bin":true,"env":"production"}</pre>'
    assert "-----> Running build: npm run build" in log.text
    assert "wrote dist/index.html" in log.text
    done = log.text.index("wrote dist/index.html") + 1
    assert log.text[done].startswith("-----> Build step done (")
    assert log.text.index("-----> Running build: npm run build") < done
    assert set(first.steps) >= {"dependencies", "build", "app_layer"}
    assert not (builder.layer(first, "deps") / "dist").exists()

    again = Log()
    second = await builder.build({**NODE_APP, "server.js": "// serves dist/, v2\n"}, again)
    assert second.cache_warm
    assert any(
        line.startswith("-----> Dependencies unchanged (package-lock.json)") for line in again.text
    )
    assert "-----> Running build: npm run build" in again.text
    assert builder.layer(second, "deps") == builder.layer(first, "deps")
    assert builder.layer(second, "app") != builder.layer(first, "app")
    assert (builder.layer(second, "app") / "dist" / "index.html").read_text() == built


async def test_python_build_commands_run_with_the_apps_virtualenv(builder: Builder) -> None:
    major, minor, patch, _ = host_python()
    files = {
        "requirements.txt": "# nothing to install\n",
        ".python-version": f"{major}.{minor}\n",
        "shipway.yml": f"build:\n  commands:\n    - {json.dumps(WRITE_PREFIX)}\n",
        "app.py": "print('hi')\n",
    }
    log = Log()
    result = await builder.build(files, log)
    assert f"-----> python app detected (Python {major}.{minor}.{patch})" in log.text
    assert f"-----> Running build: {WRITE_PREFIX}" in log.text
    built = builder.layer(result, "app") / "built.txt"
    assert built.read_text() == f"/deps/venv {major}.{minor}"
    assert result.manifest.runtime == f"Python {major}.{minor}.{patch}"
    assert "build" in result.steps


async def test_a_failing_build_command_fails_the_build_and_names_it(builder: Builder) -> None:
    command = "echo making the site; exit 3"
    files = {"index.html": "<p>hi", "shipway.yml": f"build:\n  commands: [{json.dumps(command)}]\n"}
    log = Log()
    with pytest.raises(BuildFailed) as failed:
        await builder.build(files, log)
    assert failed.value.message == f"build step `{command}` failed: exit 3"
    assert log.text[-2:] == [f"-----> Running build: {command}", "making the site"]


async def test_build_commands_run_in_order_and_a_private_build_hides_their_output(
    builder: Builder,
) -> None:
    commands = ["mkdir -p public && echo secret-url > public/a.txt", "cat public/a.txt"]
    files = {
        "public/index.html": "<p>hi",
        "shipway.yml": "build:\n  private: [build]\n  commands:\n"
        + "".join(f"    - {json.dumps(c)}\n" for c in commands),
    }
    log = Log()
    result = await builder.build(files, log)
    assert (builder.layer(result, "app") / "public" / "a.txt").read_text() == "secret-url\n"
    assert ("secret-url", True) in log.lines
    shown = [line for line, private in log.lines if not private]
    assert [line for line in shown if line.startswith("-----> Running build")] == [
        f"-----> Running build: {c}" for c in commands
    ]
    assert "secret-url" not in shown


@pytest.mark.parametrize(
    ("files", "says"),
    [
        (
            {**NODE_APP, **node_app("b", engines={"node": ">=99"})},
            "package.json's engines.node asks for >=99; this host has: ",
        ),
        (
            {"index.html": "x", "shipway.yml": "build:\n  commands: make site\n"},
            "shipway.yml: build.commands must be a list of shell commands",
        ),
    ],
)
async def test_what_the_build_cannot_do_fails_it_before_any_step_runs(
    builder: Builder, files: dict[str, str], says: str
) -> None:
    log = Log()
    with pytest.raises(BuildFailed) as failed:
        await builder.build(files, log)
    assert failed.value.message.startswith(says)
    assert log.text == []


async def test_a_runtime_the_host_lacks_is_refused_with_the_versions_it_has(
    builder: Builder,
) -> None:
    have = sorted({i.version for i in runtimes.installed(runtimes.PYTHONS) if i.version})
    with pytest.raises(BuildFailed) as failed:
        await builder.build({"requirements.txt": "", "runtime.txt": "python-3.9.1"})
    listed = ", ".join(semver.show(v) for v in have)
    assert failed.value.message == f"runtime.txt asks for python-3.9.1; this host has: {listed}"
    assert semver.show(host_python()) in listed


async def test_a_dockerfile_app_without_podman_is_told_what_to_install(
    builder: Builder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))  # neither podman nor runc on it
    files = {"Dockerfile": "FROM debian:bookworm-slim\n", "package.json": "{}"}
    with pytest.raises(BuildFailed) as failed:
        await builder.build(files)
    assert failed.value.message == (
        "this app builds from its Dockerfile with podman, but podman and runc are not "
        "installed: run `apt-get install podman runc`"
    )
