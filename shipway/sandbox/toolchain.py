"""The host toolchain a sandbox sees: /usr, the merged-usr links, a curated /etc, a fake passwd."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from shipway.sandbox.spec import Mount

#: Top-level directories that hold programs and libraries; symlinks on a merged-usr system.
_PROGRAM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

#: What programs need from /etc: name resolution, TLS roots, the dynamic linker, the time zone,
#: Debian's alternatives and Python's site configuration. Never shadow, gshadow, ssh or ssl keys.
_ETC = (
    "/etc/alternatives",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/protocols",
    "/etc/python3",
    "/etc/python3.11",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/timezone",
)

SANDBOX_USER = "sandbox"


def toolchain_mounts() -> list[Mount]:
    """The read-only host toolchain every sandbox gets unless its spec opts out."""
    return list(_toolchain())


@cache
def _toolchain() -> tuple[Mount, ...]:
    programs = [p for p in _PROGRAM_DIRS if os.path.isdir(p) and not os.path.islink(p)]
    etc = [p for p in _ETC if os.path.exists(p)]
    return tuple(Mount(Path(path), path) for path in programs + etc)


@cache
def root_symlinks() -> tuple[tuple[str, str], ...]:
    """(link text, path) for each top-level program dir that is a symlink, as on merged usr."""
    return tuple((os.readlink(path), path) for path in _PROGRAM_DIRS if os.path.islink(path))


def passwd(uid: int, gid: int) -> bytes:
    """An /etc/passwd naming only the sandbox user, so tools can look themselves up."""
    return (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        f"{SANDBOX_USER}:x:{uid}:{gid}:{SANDBOX_USER}:/tmp:/bin/sh\n"
    ).encode()


def group(gid: int) -> bytes:
    """The /etc/group that goes with passwd()."""
    return f"root:x:0:\nnogroup:x:65534:\n{SANDBOX_USER}:x:{gid}:\n".encode()
