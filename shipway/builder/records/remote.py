"""A builder's records on another machine: it asks the control plane at --server for what a
builder beside it reads from the store and data dir (shipway.builder.records.local), and
keeps its own data dir for its caches, layers, images and sources. Blocking calls, made from
threads."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from shipway.builder.records import AppConfig, Begun
from shipway.client.api import describe_error
from shipway.errors import ServiceError
from shipway.logs.writer import LineStore
from shipway.oci import transfer
from shipway.oci.podman import Podman
from shipway.releases.layers import LayerStore, write_tar

API = "/api/v1/builder"
TIMEOUT = httpx.Timeout(30.0, read=600.0)


class RemoteRecords:
    def __init__(self, url: str, token: str, data_dir: Path) -> None:
        self.url = url.rstrip("/")
        self.data_dir = data_dir
        self.http = api_client(self.url, token)
        self.lines: LineStore = RelayedLines(self.http)

    def close(self) -> None:
        self.http.close()

    def connect(self) -> dict[str, Any]:
        """Where Temporal and NATS are, as the control plane knows them."""
        found: dict[str, Any] = self._json("GET", "/connect")
        return found

    def begin(self, build_id: int, deployment_id: int, attempt: str, builder: str) -> Begun | None:
        body = {"deployment_id": deployment_id, "attempt": attempt, "builder": builder}
        said = self._json("POST", f"/builds/{build_id}/begin", json=body)
        return Begun(said["previous"]) if said["begun"] else None

    def standing(self, build_id: int) -> tuple[str, str | None]:
        said = self._json("GET", f"/builds/{build_id}/standing")
        return said["status"], said["attempt"]

    def config(self, app_id: int) -> AppConfig:
        return AppConfig.from_json(self._json("GET", f"/apps/{app_id}/config"))

    def source(self, build_id: int, path: str) -> Path:
        """The build's source, fetched into this builder's data dir."""
        sources = self.data_dir / "sources"
        sources.mkdir(parents=True, exist_ok=True)
        target = sources / f"{build_id}.tar"
        partial = target.with_suffix(".part")
        with self.http.stream("GET", f"/builds/{build_id}/source") as response:
            _check(response)
            with open(partial, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        partial.replace(target)
        return target

    def publish(self, digests: list[str], layers: Path) -> None:
        """Send the control plane each layer of the release it does not have yet."""
        store = LayerStore(layers)
        for digest in dict.fromkeys(digests):
            if self.http.head(f"/layers/{digest}").status_code == 200:
                continue
            with tempfile.TemporaryFile() as archive:
                write_tar(store.path(digest), archive)
                archive.seek(0)
                _check(self._put(f"/layers/{digest}", archive))

    def publish_image(self, image_id: str, data_dir: Path) -> None:
        """Send the control plane the release's image from DATA_DIR's podman storage, unless
        it has it: an archive it loads only if it holds exactly IMAGE_ID."""
        if self.http.head(f"/images/{image_id}").status_code == 200:
            return
        path = asyncio.run(transfer.export(Podman(data_dir), image_id, data_dir / "tmp"))
        try:
            with open(path, "rb") as archive:
                _check(self._put(f"/images/{image_id}", archive))
        finally:
            path.unlink(missing_ok=True)

    def _put(self, path: str, archive: IO[bytes]) -> httpx.Response:
        """Stream ARCHIVE, a tar, to PATH."""
        return self.http.put(
            path,
            content=iter(lambda: archive.read(1 << 20), b""),
            headers={"Content-Type": "application/x-tar"},
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return _json(self.http, method, path, **kwargs)


def api_client(url: str, token: str) -> httpx.Client:
    """A client of the builder API of the control plane at URL."""
    return httpx.Client(
        base_url=url.rstrip("/") + API,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


class RelayedLines:
    """A build log's lines, stored by the control plane, which also publishes them live: a
    builder needs no NATS permission over any log."""

    relayed = True

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def last_seq(self, kind: str, owner_id: int) -> int:
        seq: int = _json(self.http, "GET", f"/builds/{owner_id}/log")["last_seq"]
        return seq

    def insert(self, kind: str, owner_id: int, batch: Sequence[tuple[int, str]]) -> None:
        for start in range(0, len(batch), 1000):
            lines = [list(line) for line in batch[start : start + 1000]]
            _json(self.http, "POST", f"/builds/{owner_id}/log", json={"lines": lines})

    def end(self, kind: str, owner_id: int, seq: int, status: str) -> None:
        body = {"seq": seq, "status": status}
        _json(self.http, "POST", f"/builds/{owner_id}/log/end", json=body)


def _json(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = http.request(method, path, **kwargs)
    _check(response)
    return response.json() if response.status_code != 204 else None


def _check(response: httpx.Response) -> None:
    if not response.is_success:
        response.read()
        raise ServiceError(f"the control plane answered: {describe_error(response)}")
