"""/api/v1/images over real podman: the platform owner's only, bad input refused, audited."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from shipway.oci import images
from shipway.oci.images import Base, Images
from tests.helpers import auth, make_token
from tests.oci.conftest import Archives

TAR = {"Content-Type": "application/x-tar"}


@pytest.fixture
def owner(api: TestClient, storage: Images) -> TestClient:
    """The API as the platform's owner, its data dir's images in STORAGE."""
    return api


def imported(api: TestClient, archive: Path, **params: str) -> Any:
    return api.post(
        "/api/v1/images:import", content=archive.read_bytes(), params=params, headers=TAR
    )


def actions(api: TestClient, action: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(
        "/api/v1/audit/entries", params={"action": action}
    ).json()["items"]
    return items


def test_a_base_is_made_named_and_recorded(
    owner: TestClient, debian_tar: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def from_the_runs_base(base: Base, out: Path, line: Any = None) -> None:
        """mmdebstrap's tar, made once for the run by the very same function."""
        assert base == images.BASES["debian:bookworm-slim"]
        shutil.copyfile(debian_tar, out)

    monkeypatch.setattr(images, "rootfs", from_the_runs_base)
    made = owner.post("/api/v1/images:base", json={"name": "debian:bookworm-slim"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["reference"] == "docker.io/library/debian:bookworm-slim"
    assert body["names"] == [body["reference"]] and body["size"] > 50_000_000
    assert [image["id"] for image in owner.get("/api/v1/images").json()] == [body["id"]]
    [entry] = actions(owner, "image.base")
    assert entry["subject"] == "image:docker.io/library/debian:bookworm-slim"
    assert entry["payload"]["id"] == body["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "debian:sid"},
        {"name": "docker.io/library/debian:bookworm-slim"},
        {"name": ""},
        {"name": 12},
        {"name": "x" * 500},
        {},
        {"name": "debian:bookworm", "extra": 1},
    ],
)
def test_an_unknown_base_is_refused(owner: TestClient, body: dict[str, Any]) -> None:
    refused = owner.post("/api/v1/images:base", json=body)
    assert refused.status_code == 422, refused.text
    assert owner.get("/api/v1/images").json() == []


def test_the_refusal_names_the_known_bases(owner: TestClient) -> None:
    refused = owner.post("/api/v1/images:base", json={"name": "ubuntu:24.04"}).json()["error"]
    assert refused["message"] == (
        "shipway cannot make the base image 'ubuntu:24.04'; "
        "it makes debian:bookworm, debian:bookworm-slim"
    )
    assert refused["details"]["known"] == ["debian:bookworm", "debian:bookworm-slim"]


def test_an_archive_is_imported_listed_and_removed(owner: TestClient, archives: Archives) -> None:
    loaded = imported(owner, archives.docker, tag="example.com/team/tiny:2")
    assert loaded.status_code == 201, loaded.text
    assert loaded.json()["references"] == ["localhost/tiny:1", "example.com/team/tiny:2"]
    [image] = owner.get("/api/v1/images").json()
    assert image["id"] == archives.image_id and image["short_id"] == archives.image_id[7:19]
    assert image["names"] == ["localhost/tiny:1", "example.com/team/tiny:2"]
    assert (image["app"], image["build"]) == ("web", "7") and image["created"]

    untagged = owner.delete(f"/api/v1/images/{quote('example.com/team/tiny:2', safe='')}")
    assert untagged.status_code == 200, untagged.text
    assert untagged.json() == {
        "reference": "example.com/team/tiny:2",
        "untagged": ["example.com/team/tiny:2"],
        "deleted": [],
    }
    deleted = owner.delete("/api/v1/images/localhost/tiny:1").json()
    assert deleted["deleted"] == [archives.image_id[7:]]
    assert owner.get("/api/v1/images").json() == []

    [entry] = actions(owner, "image.import")
    assert entry["subject"] == "image:localhost/tiny:1,example.com/team/tiny:2"
    removed = actions(owner, "image.remove")
    assert {e["subject"] for e in removed} == {
        "image:example.com/team/tiny:2",
        "image:localhost/tiny:1",
    }


def test_an_oci_archive_is_imported(owner: TestClient, archives: Archives) -> None:
    loaded = imported(owner, archives.oci)
    assert loaded.status_code == 201, loaded.text
    assert [image["id"] for image in loaded.json()["images"]] == [archives.image_id]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 a zip, say", b"\0" * 10240])
def test_a_body_that_is_no_image_archive_is_refused(
    owner: TestClient, archives: Archives, content: bytes
) -> None:
    imported(owner, archives.oci)
    before = owner.get("/api/v1/images").json()
    refused = owner.post("/api/v1/images:import", content=content, headers=TAR)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["message"].startswith("not an image archive podman can load: ")
    assert owner.get("/api/v1/images").json() == before
    assert actions(owner, "image.import") and len(actions(owner, "image.import")) == 1
    assert list((owner_data(owner) / "tmp").iterdir()) == []


def owner_data(api: TestClient) -> Path:
    data_dir: Path = api.app.services.settings.data_dir  # type: ignore[attr-defined]
    return data_dir


def test_an_import_must_say_it_is_an_archive(owner: TestClient, archives: Archives) -> None:
    refused = owner.post(
        "/api/v1/images:import",
        content=archives.docker.read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 415
    assert owner.get("/api/v1/images").json() == []


def test_an_archive_declared_over_4_gib_is_refused_before_it_is_read(owner: TestClient) -> None:
    refused = owner.post(
        "/api/v1/images:import",
        content=b"x",
        headers={**TAR, "Content-Length": str(5 * 1024**3)},
    )
    assert refused.status_code == 413
    assert refused.json()["error"]["message"] == "the image archive is larger than the 4 GiB limit"


@pytest.mark.parametrize("tag", ["-x", "UPPER", "a b"])
def test_a_bad_tag_is_refused(owner: TestClient, archives: Archives, tag: str) -> None:
    assert imported(owner, archives.docker, tag=tag).status_code == 422
    assert owner.get("/api/v1/images").json() == []


@pytest.mark.parametrize("ref", ["nothing:1", "example.com/team/tiny:9", "0123456789ab"])
def test_rm_of_an_unknown_image_is_404(owner: TestClient, archives: Archives, ref: str) -> None:
    imported(owner, archives.docker)
    refused = owner.delete(f"/api/v1/images/{quote(ref, safe='')}")
    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["message"] == f"no image {ref!r} in shipway's storage"
    assert len(owner.get("/api/v1/images").json()) == 1


@pytest.mark.parametrize("ref", ["-f", "%20x", "a%3Bb", "%2E%2E%2Fx"])
def test_rm_of_no_reference_is_422(owner: TestClient, ref: str) -> None:
    assert owner.delete(f"/api/v1/images/{ref}").status_code == 422


def test_an_image_in_use_is_removed_only_by_force(
    owner: TestClient, storage: Images, archives: Archives
) -> None:
    import asyncio

    imported(owner, archives.docker)
    asyncio.run(storage.podman.run("create", "localhost/tiny:1", "/hello.txt"))
    refused = owner.delete("/api/v1/images/localhost/tiny:1")
    assert refused.status_code == 409, refused.text
    assert "used by a container" in refused.json()["error"]["message"]
    forced = owner.delete("/api/v1/images/localhost/tiny:1", params={"force": "true"})
    assert forced.status_code == 200, forced.text
    assert owner.get("/api/v1/images").json() == []
    [entry] = actions(owner, "image.remove")
    assert entry["payload"]["force"] is True


@pytest.mark.parametrize("who", ["viewer", "deployer", "owner of another organization"])
def test_only_the_platforms_owners_manage_images(
    owner: TestClient, archives: Archives, who: str
) -> None:
    if who.startswith("owner"):
        token = owner.post("/api/v1/orgs", json={"name": "globex"}).json()["owner_token"]
    else:
        token = make_token(owner, who)
    imported(owner, archives.docker)
    before = owner.get("/api/v1/images").json()
    headers = auth(token)
    answers = [
        owner.get("/api/v1/images", headers=headers),
        owner.post("/api/v1/images:base", json={"name": "debian:sid"}, headers=headers),
        owner.post(
            "/api/v1/images:import",
            content=archives.oci.read_bytes(),
            params={"tag": "example.com/x:1"},
            headers={**headers, **TAR},
        ),
        owner.delete("/api/v1/images/localhost/tiny:1", headers=headers),
    ]
    assert [answer.status_code for answer in answers] == [403] * 4
    assert owner.get("/api/v1/images").json() == before


@pytest.mark.parametrize(("path", "allowed"), [("images:base", "POST"), ("images:import", "POST")])
def test_making_and_importing_are_no_images_names(
    owner: TestClient, path: str, allowed: str
) -> None:
    refused = owner.get(f"/api/v1/{path}")
    assert refused.status_code == 405 and refused.headers["allow"] == allowed
