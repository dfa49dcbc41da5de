"""The pages an embedded server read only while starting, given back once shipway is up.

The embedded Temporal is one 150 MB executable, and starting it maps in most of it: 93 MiB
of pages touched, up to 135 MiB on ext4, where the kernel maps in the cached pages around
each one touched. At rest it runs in a third of that. Once shipway is up, the file-backed
pages of each server are paged out with process_madvise(MADV_PAGEOUT): they are clean pages of
files, so nothing is written, nothing is lost, and what the server runs again is read back on
demand.

That needs Linux 5.10 and CAP_SYS_NICE (`shipway up` as root has it). Without them the pages
stay where they are: it costs memory, never correctness."""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

_SYS_PROCESS_MADVISE = 440  # since Linux 5.10, on x86-64 and arm64 alike
_MADV_PAGEOUT = 21
#: At most this many ranges per call (the kernel's UIO_MAXIOV).
_BATCH = 1024


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


def file_ranges(pid: int) -> list[tuple[int, int]]:
    """The (start, length) of every mapping of a file in process PID's address space."""
    ranges = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/") and fields[4] != "0":
                start, end = (int(address, 16) for address in fields[0].split("-"))
                ranges.append((start, end - start))
    return ranges


def page_out(pid: int) -> int:
    """Page out process PID's file-backed pages; returns the bytes advised. Raises OSError
    when the kernel refuses (ENOSYS before Linux 5.10, EPERM without CAP_SYS_NICE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    ranges = file_ranges(pid)
    advised = 0
    handle = os.pidfd_open(pid)
    try:
        for first in range(0, len(ranges), _BATCH):
            batch = ranges[first : first + _BATCH]
            vector = (_IoVec * len(batch))(*(_IoVec(start, length) for start, length in batch))
            done = libc.syscall(_SYS_PROCESS_MADVISE, handle, vector, len(batch), _MADV_PAGEOUT, 0)
            if done < 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error))
            advised += done
    finally:
        os.close(handle)
    return advised


def give_back(processes: dict[str, int]) -> None:
    """Page out the start-up pages of each server (name → pid); a refusal is logged once."""
    for name, pid in processes.items():
        try:
            advised = page_out(pid)
        except (ProcessLookupError, FileNotFoundError):
            continue  # gone meanwhile: its supervisor starts it again
        except OSError as e:
            log.info("the start-up pages of %s stay in memory: %s", name, e.strerror)
            return
        log.debug("paged out %d MiB of %s's file pages", advised >> 20, name)
