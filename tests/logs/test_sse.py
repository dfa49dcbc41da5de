"""The event-stream format, encoded by the server and parsed by the clients."""

from __future__ import annotations

import httpx

from shipway.logs.sse import KEEP_ALIVE, SseEvent, SseParser, encode, iter_sse


def _parse(text: str) -> list[SseEvent]:
    parser = SseParser()
    found = [parser.feed(line) for line in text.splitlines()]
    return [e for e in found if e is not None]


def test_encode_then_parse_round_trips() -> None:
    text = encode("line", '{"seq": 1}', id=1) + KEEP_ALIVE + encode("end", "a\nb")
    assert text.startswith('id: 1\nevent: line\ndata: {"seq": 1}\n\n')
    assert _parse(text) == [SseEvent("line", "1", '{"seq": 1}'), SseEvent("end", "1", "a\nb")]


def test_parser_follows_the_event_stream_rules() -> None:
    text = (
        ": a comment\n"
        "data:no space\n\n"
        "event: custom\ndata\ndata: x\n\n"
        "id: 7\nevent: empty\n\n"
        "retry: 100\ndata: y\n\n"
        "id: bad\0id\ndata: z\n\n"
    )
    assert _parse(text) == [
        SseEvent("message", None, "no space"),
        SseEvent("custom", None, "\nx"),
        SseEvent("message", "7", "y"),
        SseEvent("message", "7", "z"),
    ]


def test_iter_sse_reads_an_httpx_response_with_any_line_endings() -> None:
    body = b"id: 1\r\nevent: line\r\ndata: one\r\n\r\nevent: end\rdata: done\r\r"
    response = httpx.Response(200, content=body)
    assert list(iter_sse(response)) == [
        SseEvent("line", "1", "one"),
        SseEvent("end", "1", "done"),
    ]
