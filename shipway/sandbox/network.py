"""A networked sandbox's own network: slirp4netns gives its network namespace a way out to the
internet that does not lead back into the host.

bubblewrap makes the namespace and waits on --block-fd before the command runs. It says which
namespace it made before its own setup inside has run, and that setup adds lo's 127.0.0.1
exclusively: had lo come up first (the kernel gives lo that address as it does), bubblewrap
would fail ("loopback: Failed RTM_NEWADDR"). So nothing of shipway's touches the namespace until
lo is up with its address. Then netsetup.c, in the namespace as the sandbox's uid, gives the
sandbox unreachable routes to the host's addresses, bar loopback, and to link-local ones (such
as a cloud's metadata service). slirp4netns, which netsetup.c starts as the sandbox's uid (no
fork of shipway does either step), joins the namespace's owning user namespace, configures
tap0 (10.0.2.100, gateway 10.0.2.2, DNS 10.0.2.3) and relays the sandbox's connections through
sockets of its own in the host's namespace. --disable-host-loopback refuses the gateway's way to
the host's 127.0.0.1; without those routes, the host's other addresses would still be reached
that way.

Where slirp4netns cannot run, a sandbox that asks for network is refused (fail closed): it
shares the host's network only when the operator said so with --unsafe-shared-network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import ipaddress
import logging
import os
import shutil
import socket
import struct
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from shipway import children, system
from shipway.sandbox import programs
from shipway.sandbox.spec import SandboxError

log = logging.getLogger(__name__)

#: What the sandbox's /etc/resolv.conf says: slirp4netns's DNS forwarder.
RESOLV_CONF = b"nameserver 10.0.2.3\n"
#: Never reachable from a sandbox, besides the host's own addresses.
BLOCKED = (ipaddress.IPv4Network("169.254.0.0/16"),)
#: Seconds bubblewrap may take to set up the namespace's loopback, and slirp4netns the rest.
READY_SECONDS = 30.0
#: Processes of the sandbox's uid that slirp4netns adds while the command runs.
SLIRP_PROCESSES = 1

_libc = ctypes.CDLL(None, use_errno=True)
_NS_GET_USERNS = 0xB701
_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class Isolation(StrEnum):
    """What a sandbox that asks for network gets on this host."""

    #: A network namespace of its own, out through slirp4netns.
    ISOLATED = "isolated"
    #: Nothing: slirp4netns cannot run here, so such sandboxes are refused.
    UNAVAILABLE = "unavailable"
    #: The host's own network, because the operator said so (--unsafe-shared-network).
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class NetworkState:
    """This host's sandbox network, and what stops it from being isolated."""

    isolation: Isolation
    #: slirp4netns's path when it can run here.
    slirp4netns: str | None = None
    #: What is missing, and the command that fixes it.
    problem: str | None = None

    def describe(self) -> str:
        """One line for the banner, `shipway status` and /healthz."""
        if self.isolation is Isolation.ISOLATED:
            return "isolated"
        if self.isolation is Isolation.UNSAFE:
            return f"UNSAFE, shared with the host (--unsafe-shared-network): {self.problem}"
        return f"unavailable, networked builds and instances are refused: {self.problem}"

    def as_dict(self) -> dict[str, str | None]:
        return {"status": self.isolation.value, "detail": self.describe()}


_shared_allowed = False


def allow_shared(allowed: bool) -> None:
    """Let networked sandboxes share the host's network when they cannot have their own: the
    operator's explicit choice (`shipway up --unsafe-shared-network`), never shipway's own."""
    global _shared_allowed
    _shared_allowed = allowed
    state.cache_clear()


def shared_allowed() -> bool:
    return _shared_allowed


@cache
def state() -> NetworkState:
    """Whether sandboxes can have a network of their own here; probed once per process."""
    path = shutil.which("slirp4netns")
    problem: str | None
    if path is None:
        problem = f"slirp4netns is not installed (run: {system.install_command(['slirp4netns'])})"
    else:
        problem = system.tun_problem()
    if problem is None:
        return NetworkState(Isolation.ISOLATED, slirp4netns=path)
    isolation = Isolation.UNSAFE if _shared_allowed else Isolation.UNAVAILABLE
    if isolation is Isolation.UNSAFE:
        log.warning("sandboxes with network share the host's network: %s", problem)
    return NetworkState(isolation, problem=problem)


def require() -> str | None:
    """slirp4netns's path for a sandbox that asks for network; None where it is to share the
    host's network (--unsafe-shared-network). Raises SandboxError where it can have neither."""
    current = state()
    if current.isolation is Isolation.UNAVAILABLE:
        raise SandboxError(
            f"cannot give this sandbox a network of its own: {current.problem}; shipway never "
            "lets it share the host's network unless started with --unsafe-shared-network"
        )
    return current.slirp4netns


def unreachable() -> tuple[ipaddress.IPv4Network, ...]:
    """The host's IPv4 addresses, bar loopback (the sandbox's own), and BLOCKED."""
    found: set[ipaddress.IPv4Network] = set(BLOCKED)
    address = None
    with open("/proc/net/fib_trie") as f:
        for line in f:
            entry = line.strip()
            if entry.startswith("|-- "):
                address = ipaddress.IPv4Address(entry.removeprefix("|-- "))
            elif (
                entry.startswith("/32 ")
                and entry.split()[-1] in ("LOCAL", "BROADCAST")
                and address is not None
                and not address.is_loopback
            ):
                found.add(ipaddress.IPv4Network(address))
    return tuple(sorted(found))


def _own_user_namespace(userns_fd: int) -> bool:
    ours = os.stat("/proc/self/ns/user")
    theirs = os.fstat(userns_fd)
    return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)


def _check(result: int, what: str) -> None:  # pragma: no cover - runs in the child
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot {what}: {os.strerror(errno)}")


def own_network() -> None:  # pragma: no cover - runs in the child between fork and exec
    """A network namespace of this process's own (a preexec_fn, as root; or run in podman's
    user namespace), with lo up and nothing else, which `Slirp.attach` then gives its way out:
    a podman build's namespace."""
    _check(_libc.unshare(_CLONE_NEWNET), "unshare the network namespace")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        now = fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack("16s24x", b"lo"))
        flags = struct.unpack_from("H", now, 16)[0] | _IFF_UP
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags))


class Slirp:
    """The slirp4netns of one sandbox run: started once bubblewrap has made the namespace."""

    def __init__(self, executable: str, uid: int | None, gid: int | None) -> None:
        self.executable = executable
        self.uid = uid
        self.gid = gid
        self.proc: children.Child | None = None
        #: The write end of bubblewrap's --block-fd: closing it unblocks the sandbox too.
        self.block_w: int | None = None

    async def attach(self, child_pid: int, net_namespace: int, ended: asyncio.Future[int]) -> None:
        """Give the sandbox of CHILD_PID its network, then let its command start. If it has
        ended already, there is nothing to do: its result says why."""
        try:
            netns_fd = os.open(f"/proc/{child_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            return
        try:
            if os.fstat(netns_fd).st_ino != net_namespace:
                return  # the pid is another process's now
            userns_fd = fcntl.ioctl(netns_fd, _NS_GET_USERNS)
            try:
                # A namespace root made for a podman build belongs to shipway's own user
                # namespace, which nothing may join again.
                joined = None if _own_user_namespace(userns_fd) else userns_fd
                await self._route(joined, netns_fd, ended)
                if not ended.done():
                    await self._start(joined, netns_fd, ended)
            finally:
                os.close(userns_fd)
        finally:
            os.close(netns_fd)
        if ended.done() or self.block_w is None:
            return
        with contextlib.suppress(BrokenPipeError):  # it has ended: its result says why
            os.write(self.block_w, b"1")

    def _as_sandbox(self) -> list[str]:
        """netsetup's options that make it the sandbox's uid."""
        if self.uid is None or self.gid is None:
            return []
        return ["--uid", str(self.uid), "--gid", str(self.gid)]

    async def _route(
        self, userns_fd: int | None, netns_fd: int, ended: asyncio.Future[int]
    ) -> None:
        """Wait for bubblewrap's loopback, then add the unreachable routes: netsetup's `route`,
        as the sandbox's uid in its namespaces. slirp4netns itself stays in the host's."""
        args = [*self._as_sandbox(), "--netns-fd", str(netns_fd)]
        passed = [netns_fd]
        if userns_fd is not None:
            args += ["--userns-fd", str(userns_fd)]
            passed.append(userns_fd)
        for blocked in unreachable():
            args += ["--unreachable", str(blocked)]
        output = os.memfd_create("routing", os.MFD_CLOEXEC)
        try:
            proc = await _helper(["route", *args], output, passed)
            code = await _exit_code(proc, ended, READY_SECONDS)
            if ended.done():
                return  # its result says why
            if code is None:
                raise SandboxError(
                    "cannot set up the sandbox's network: bubblewrap did not set up its "
                    f"loopback within {READY_SECONDS:g} s"
                )
            if code != 0:
                raise SandboxError(f"cannot set up the sandbox's network: {_said(output)}")
        finally:
            os.close(output)

    async def _start(
        self, userns_fd: int | None, netns_fd: int, ended: asyncio.Future[int]
    ) -> None:
        """Start slirp4netns through netsetup's `relay`: as the sandbox's uid, with a
        /dev/net/tun of its own that it may open (the host's may be root's only)."""
        ready_r, ready_w = os.pipe()
        output = os.memfd_create("slirp4netns", os.MFD_CLOEXEC)
        try:
            args = [
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-seccomp",
                f"--ready-fd={ready_w}",
                "--netns-type=path",
                *([] if userns_fd is None else [f"--userns-path=/proc/self/fd/{userns_fd}"]),
                f"/proc/self/fd/{netns_fd}",
                "tap0",
            ]
            passed = [ready_w, netns_fd] if userns_fd is None else [ready_w, userns_fd, netns_fd]
            # A switched uid may not open the host's /dev/net/tun: it gets one of its own.
            as_sandbox = self._as_sandbox()
            relay = ["relay", *as_sandbox, *(["--private-tun"] if as_sandbox else [])]
            try:
                self.proc = await _helper(
                    [*relay, "--", self.executable, "slirp4netns", *args], output, passed
                )
            finally:
                os.close(ready_w)
            ready = await until_readable(ready_r, ended, READY_SECONDS)
            if ended.done():
                return  # its result says why
            if not ready or os.read(ready_r, 1) != b"1":
                raise SandboxError(f"cannot set up the sandbox's network: {_said(output)}")
        finally:
            os.close(ready_r)
            os.close(output)

    async def close(self) -> None:
        """Kill slirp4netns and reap it, however the run ended."""
        if self.block_w is not None:
            os.close(self.block_w)
            self.block_w = None
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await asyncio.shield(self.proc.wait())


async def until_readable(fd: int, ended: asyncio.Future[int], timeout: float | None = None) -> bool:
    """Whether FD became readable (or closed) before ENDED finished or TIMEOUT passed."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, ready)
    try:
        waiting: set[asyncio.Future[None] | asyncio.Future[int]] = {readable, ended}
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(fd)
    return readable in done


async def _helper(args: list[str], output: int, passed: list[int]) -> children.Child:
    """netsetup with ARGS, its output to OUTPUT, the fds PASSED handed down."""
    try:
        return await children.start(
            programs.network(),
            *args,
            stdin=children.DEVNULL,
            stdout=output,
            stderr=output,
            pass_fds=passed,
            cwd="/",
            env={},
        )
    except OSError as e:
        raise SandboxError(f"cannot set up the sandbox's network: {e}") from e


async def _exit_code(
    proc: children.Child, ended: asyncio.Future[int], timeout: float
) -> int | None:
    """The exit code of PROC; None, once it is killed and reaped, if ENDED finished or TIMEOUT
    passed first."""
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({exited, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            return exited.result()
    finally:
        if not exited.done():
            proc.kill()
            await asyncio.shield(exited)
    return None


def _said(fd: int) -> str:
    """What slirp4netns (or its preexec step), or the routing child, wrote."""
    text = os.pread(fd, 65536, 0).decode(errors="replace").strip()
    return text
