"""Refusing a push in git's own words: the refs of the request, rejected with a reason."""

from __future__ import annotations

import gzip

import pytest

from shipway.gitserver.pktline import FLUSH, packets, pkt, push_commands, refuse_push

OLD, NEW = "0" * 40, "a" * 40


def request_head(*caps: str) -> bytes:
    first = f"{OLD} {NEW} refs/heads/main\0{' '.join(caps)}\n".encode()
    return pkt(first) + pkt(f"{NEW} {OLD} refs/heads/gone\n") + FLUSH + b"PACK\x00\x00\x00\x02"


def test_push_commands_reads_refs_and_capabilities() -> None:
    refs, caps = push_commands(request_head("report-status", "side-band-64k", "agent=git/2"))
    assert refs == ["refs/heads/main", "refs/heads/gone"]
    assert caps == {"report-status", "side-band-64k", "agent=git/2"}


def test_a_cut_off_head_yields_what_is_complete() -> None:
    head = request_head("report-status")
    assert push_commands(head[:60]) == ([], set())
    assert list(packets(b"00")) == []


@pytest.mark.parametrize("gzipped", [False, True])
def test_refusal_with_side_band_shows_the_message_and_rejects_each_ref(gzipped: bool) -> None:
    head = request_head("report-status", "side-band-64k")
    body = refuse_push(gzip.compress(head) if gzipped else head, "too big!", "over", gzipped)
    outer = list(packets(body))
    assert outer[0] == b"\x02too big!\n" and outer[-1] is None
    report = b"".join(p[1:] for p in outer[1:-1] if p is not None)
    assert list(packets(report)) == [
        b"unpack over\n",
        b"ng refs/heads/main over\n",
        b"ng refs/heads/gone over\n",
        None,
    ]


def test_refusal_without_side_band_is_the_bare_report() -> None:
    body = refuse_push(request_head("report-status"), "too big!", "over")
    assert next(packets(body)) == b"unpack over\n"
    assert b"too big!" not in body
