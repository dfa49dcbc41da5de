import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipway.embedded import trim

MIB = 1 << 20
SIZE = 64 * MIB

#: Maps FILE and prints a sum of a byte of each page, each time a line comes on stdin.
TOUCHER = """
import mmap, sys
with open(sys.argv[1], "rb") as f:
    pages = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
for _ in sys.stdin:
    print(sum(pages[i] for i in range(0, len(pages), mmap.PAGESIZE)), flush=True)
"""


def rss_file(pid: int) -> int:
    """Resident file-backed memory of process PID, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile line")


class Toucher:
    """A process that reads every page of a 64 MiB file through a mapping when asked."""

    def __init__(self, data: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", TOUCHER, str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.process.pid

    def touch(self) -> str:
        """Read every page; returns what they add up to."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return self.process.stdout.readline()


@pytest.fixture
def toucher(tmp_path: Path) -> Iterator[Toucher]:
    data = tmp_path / "data"
    data.write_bytes(os.urandom(SIZE))
    toucher = Toucher(data)
    yield toucher
    toucher.process.communicate("")


def test_the_mappings_of_files_are_found(toucher: Toucher) -> None:
    toucher.touch()
    lengths = [length for _, length in trim.file_ranges(toucher.pid)]
    assert SIZE in lengths


@pytest.mark.skipif(os.geteuid() != 0, reason="paging out another process needs CAP_SYS_NICE")
def test_paged_out_pages_leave_the_process_and_are_read_back_on_use(toucher: Toucher) -> None:
    total = toucher.touch()
    before = rss_file(toucher.pid)
    assert before >= SIZE
    assert trim.page_out(toucher.pid) >= SIZE
    assert rss_file(toucher.pid) <= before - SIZE // 2
    assert toucher.touch() == total
    assert rss_file(toucher.pid) >= SIZE


def test_a_process_gone_is_passed_over(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shipway.embedded.trim")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    trim.give_back({"gone": gone.pid})
    assert "stay in memory" not in caplog.text
