"""Static sites served by the router itself, and the paths it must refuse."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shipway.router import Route
from tests.router.conftest import Proxy
from tests.router.servers import ask, read_reply


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site with an index, a nested page, a secret beside it and links pointing out."""
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "docs" / "guide page.txt").write_text("guide")
    (root / "style.css").write_text("body{}")
    (root / ".env").write_text("SECRET=1")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "escape-dir").symlink_to(tmp_path)
    (root / "inside").symlink_to(root / "style.css")
    (root / "loop").symlink_to(root / "loop")
    return root


@pytest.fixture
def served(proxy: Proxy, site: Path) -> Proxy:
    proxy.table.switch("site.localhost", Route("site", "production", static_root=site))
    return proxy


def get(path: bytes, method: bytes = b"GET", extra: bytes = b"") -> bytes:
    return method + b" " + path + b" HTTP/1.1\r\nHost: site.localhost\r\n" + extra + b"\r\n"


async def test_index_and_files_with_types(served: Proxy) -> None:
    async with served.client(headers={"Host": "site.localhost"}) as client:
        home = await client.get("/?query=ignored")
        docs = await client.get("/docs/")
        css = await client.get("/style.css")
        spaced = await client.get("/docs/guide%20page.txt")
        inside = await client.get("/inside")
    assert home.status_code == 200 and home.text == "<h1>home</h1>"
    assert home.headers["content-type"] == "text/html; charset=utf-8"
    assert docs.text == "<h1>docs</h1>"
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert spaced.text == "guide"
    assert inside.text == "body{}"
    assert home.headers["x-request-id"]


async def test_directory_without_slash_redirects(served: Proxy) -> None:
    reply = await ask(served.port, get(b"/docs?x=1"))
    assert reply.status == 301
    assert reply.header("location") == "/docs/?x=1"


async def test_missing_files_are_404(served: Proxy) -> None:
    for path in (b"/nope.html", b"/empty/", b"/docs/nope/"):
        reply = await ask(served.port, get(path))
        assert reply.status == 404, path


@pytest.mark.parametrize(
    "path",
    [
        b"/../secret.txt",
        b"/docs/../../secret.txt",
        b"/%2e%2e/secret.txt",
        b"/docs/%2E%2E%2F%2E%2E%2Fsecret.txt",
        b"/escape",
        b"/escape-dir/secret.txt",
        b"/style.css%00.html",
        b"/..%5csecret.txt",
        b"/.env",
        b"/loop",
    ],
)
async def test_paths_outside_the_root_are_refused(served: Proxy, path: bytes) -> None:
    reply = await ask(served.port, get(path))
    assert reply.status in (400, 404)
    assert b"outside" not in reply.body and b"SECRET" not in reply.body


async def test_only_get_and_head(served: Proxy) -> None:
    reply = await ask(served.port, get(b"/", b"DELETE"))
    assert reply.status == 405
    assert reply.header("allow") == "GET, HEAD"
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(get(b"/style.css", b"HEAD") + get(b"/style.css"))
    head = await read_reply(reader, head_only=True)
    body = await read_reply(reader)
    writer.close()
    assert head.header("content-length") == "6"
    assert body.body == b"body{}"


async def test_etag_gives_304(served: Proxy) -> None:
    first = await ask(served.port, get(b"/style.css"))
    etag = first.header("etag")
    assert etag and first.header("last-modified")
    again = await ask(
        served.port, get(b"/style.css", extra=b"If-None-Match: " + etag.encode() + b"\r\n")
    )
    assert again.status == 304 and again.body == b""
    since = first.header("last-modified") or ""
    dated = await ask(
        served.port, get(b"/style.css", extra=f"If-Modified-Since: {since}\r\n".encode())
    )
    assert dated.status == 304


async def test_large_file_is_sent_whole(served: Proxy, site: Path) -> None:
    data = bytes(range(256)) * 20_000
    (site / "big.bin").write_bytes(data)
    async with served.client(headers={"Host": "site.localhost"}) as client:
        response = await client.get("/big.bin")
        after = await client.get("/style.css")
    assert response.content == data
    assert response.headers["content-type"] == "application/octet-stream"
    assert after.text == "body{}"
