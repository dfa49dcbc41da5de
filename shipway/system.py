"""The host packages shipway needs, checked before anything starts.

Builds run the host's git, Python (with venv), node and npm inside sandboxes, and a sandbox
with network gets one of its own from slirp4netns over /dev/net/tun. Without slirp4netns a
networked sandbox would have to share the host's network, so shipway refuses to run one
instead: this check says so before the first build does. Dockerfile builds and their
containers run with podman and runc, and the Debian bases they start from are made with
mmdebstrap. Each sandbox's supervisor is a small C program that shipway builds with gcc.

Standard library only: `make up` runs it with the system's Python before the virtualenv exists
(`python3 -m shipway.system --install`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

#: The device slirp4netns opens to give a sandbox its network.
TUN = "/dev/net/tun"
#: The Python that Python builds make their virtualenvs with.
BUILD_PYTHON = "/usr/bin/python3"


def _venv() -> bool:
    try:
        return (
            subprocess.run(
                [BUILD_PYTHON, "-c", "import ensurepip, venv"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
            ).returncode
            == 0
        )
    except OSError:
        return False


def _command(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


@dataclass(frozen=True)
class Requirement:
    """A Debian package shipway needs, what for, and how to tell it is there."""

    package: str
    purpose: str
    present: Callable[[], bool]


#: What gcc and libc6-dev are for (see shipway.native).
_C_PROGRAMS = "building shipway's C programs (the sandbox's supervisor, its network, the git hook)"

REQUIREMENTS = (
    Requirement("git", "git pushes and builds", _command("git")),
    Requirement("python3-venv", "Python builds", _venv),
    Requirement("nodejs", "Node builds", _command("node")),
    Requirement("npm", "Node builds", _command("npm")),
    Requirement("slirp4netns", "a network of its own for each sandbox", _command("slirp4netns")),
    Requirement("redis-server", "redis add-ons", _command("redis-server")),
    Requirement(
        "podman", "Dockerfile builds and the containers of their releases", _command("podman")
    ),
    Requirement("runc", "the runtime podman runs containers with", _command("runc")),
    Requirement("catatonit", "the init of each container", _command("catatonit")),
    Requirement("mmdebstrap", "Debian base images made without a registry", _command("mmdebstrap")),
    Requirement("gcc", _C_PROGRAMS, _command("cc")),
    Requirement("libc6-dev", _C_PROGRAMS, lambda: os.path.exists("/usr/include/stdlib.h")),
)


def missing() -> list[Requirement]:
    """The requirements this host lacks, in REQUIREMENTS' order."""
    return [r for r in REQUIREMENTS if not r.present()]


def tun_problem() -> str | None:
    """Why slirp4netns cannot use /dev/net/tun here, or None when it can.

    As root, shipway gives slirp4netns a device node of its own, so the device need only exist;
    any other user must be able to open the host's.
    """
    if not os.path.exists(TUN):
        return (
            f"{TUN} does not exist: load the tun module (modprobe tun), or run shipway's "
            f"container with --device {TUN}"
        )
    if os.geteuid() != 0 and not os.access(TUN, os.R_OK | os.W_OK):
        return f"{TUN} cannot be opened by this user: make it mode 0666 (chmod 0666 {TUN})"
    return None


def install_command(packages: list[str]) -> str:
    """The one command that installs PACKAGES on a Debian-like system."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y {' '.join(packages)}"


def _can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        text=True,
        check=False,
    )


def _install(wanted: list[Requirement]) -> bool:
    """apt-get install each of WANTED, one line each; whether all went in."""
    print("shipway: updating the package lists (apt-get update)", flush=True)
    _apt("update", "-qq")
    ok = True
    for requirement in wanted:
        print(f"shipway: installing {requirement.package} ({requirement.purpose})", flush=True)
        done = _apt("install", "-y", "-qq", requirement.package)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            print(f"shipway: cannot install {requirement.package}: {last[-1] if last else ''}")
            ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m shipway.system", description="Check the host packages shipway needs."
    )
    parser.add_argument(
        "--install",
        action="store_true",
        help="as root on a Debian-like system, install what is missing with apt-get",
    )
    args = parser.parse_args(argv)
    lacking = missing()
    if lacking and args.install and _can_install():
        _install(lacking)
        lacking = missing()
    status = 0
    if lacking:
        names = [r.package for r in lacking]
        for requirement in lacking:
            print(f"shipway needs {requirement.package} for {requirement.purpose}")
        print(f"Install {'it' if len(names) == 1 else 'them'} with:\n  {install_command(names)}")
        status = 1
    tun = tun_problem()
    if tun is not None:
        print(f"shipway needs {TUN} for a network of its own for each sandbox: {tun}")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
