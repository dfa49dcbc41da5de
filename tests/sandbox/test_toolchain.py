"""Builds use the host's Debian toolchain: python3 with venv and pip, node and npm."""

from __future__ import annotations

import shutil
from pathlib import Path

from shipway.sandbox import toolchain_mounts
from tests.conftest import unavailable
from tests.sandbox.conftest import limits, sandboxed


def test_toolchain_is_read_only_and_has_no_secrets() -> None:
    mounts = toolchain_mounts()
    targets = {m.target for m in mounts}
    assert "/usr" in targets and "/etc/resolv.conf" in targets
    assert not any(m.writable for m in mounts)
    for secret in ("/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/ssl/private", "/root"):
        assert not any(t == secret or t.startswith(secret + "/") for t in targets)


async def test_python_venv_and_pip(workspace: Path) -> None:
    if not Path("/usr/bin/python3").exists():
        unavailable("/usr/bin/python3 is not installed")
    ran = await sandboxed(
        workspace,
        "set -e; python3 --version; python3 -m venv /workspace/.venv; "
        "/workspace/.venv/bin/pip --version; /workspace/.venv/bin/python -c 'print(6 * 7)'",
        limits=limits(),
    )
    assert ran.result.reason is None, ran.output
    assert ran.lines[0].startswith("Python 3.")
    assert any(line.startswith("pip ") and "/workspace/.venv/" in line for line in ran.lines)
    assert ran.lines[-1] == "42"
    assert (workspace / ".venv" / "bin" / "pip").exists()


async def test_node_and_npm(workspace: Path) -> None:
    if (
        shutil.which("node", path="/usr/bin") is None
        or shutil.which("npm", path="/usr/bin") is None
    ):
        unavailable("/usr/bin/node and /usr/bin/npm are not installed")
    ran = await sandboxed(
        workspace,
        "set -e; node -e 'console.log(6 * 7)'; npm --version",
        limits=limits(),
    )
    assert ran.result.reason is None, ran.output
    assert ran.lines[0] == "42"
    assert ran.lines[1][0].isdigit()
