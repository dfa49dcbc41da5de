"""Calls to /api/v1: the server's own message as the one line a failure shows."""

from __future__ import annotations

import httpx
import pytest

from shipway.client.api import Api, describe_error
from shipway.embedded import ports
from shipway.errors import ClientError, ShipwayError
from tests.cli.conftest import Server


def test_a_json_error_is_its_message_and_status() -> None:
    body = {"error": {"code": "not_found", "message": "no app named 'web'", "details": None}}
    assert describe_error(httpx.Response(404, json=body)) == "no app named 'web' (HTTP 404)"


def test_a_body_that_is_not_json_is_shown_as_text_cut_to_200_characters() -> None:
    short = httpx.Response(502, text="  upstream went away\n")
    assert describe_error(short) == "upstream went away (HTTP 502)"
    long = httpx.Response(500, text="x" * 500)
    assert describe_error(long) == "x" * 200 + " (HTTP 500)"


def test_json_of_another_shape_is_shown_as_text() -> None:
    assert describe_error(httpx.Response(400, json={"detail": "no"})) == (
        '{"detail":"no"} (HTTP 400)'
    )
    assert describe_error(httpx.Response(400, json=["no"])) == '["no"] (HTTP 400)'


def test_an_empty_5xx_is_its_reason_phrase() -> None:
    assert describe_error(httpx.Response(503)) == "Service Unavailable (HTTP 503)"


def test_calls_answer_json_or_none(server: Server) -> None:
    api = Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"])
    made = api.post("/apps", {"name": "web"})
    assert made["name"] == "web"
    assert [a["name"] for a in api.get("/apps")] == ["web"]
    assert api.request("PATCH", "/apps/web", json={"plan": "pro"})["plan"] == "pro"
    assert api.delete("/apps/web") is None
    assert api.get("/apps") == []


def test_a_refusal_is_the_servers_message(server: Server) -> None:
    api = Api(server.env["SHIPWAY_URL"], server.env["SHIPWAY_TOKEN"])
    with pytest.raises(ClientError) as raised:
        api.get("/apps/nope")
    assert str(raised.value) == "no app named 'nope' (HTTP 404)"
    with pytest.raises(ClientError, match=r"\(HTTP 401\)$"):
        Api(api.url, "swt_not_a_token").get("/apps")


def test_a_server_that_is_not_there_is_one_line() -> None:
    url = f"http://127.0.0.1:{ports.any_free()}"
    with pytest.raises(ClientError, match=f"^cannot reach shipway at {url}: ") as raised:
        Api(url, "swt_x", timeout=5).get("/apps")
    assert isinstance(raised.value, ShipwayError)
