"""Dockerfile apps as a user meets them: a real `shipway up` with no registry to pull from,
the Debian base made here, `git push`es built by podman, a release per image digest, rollback
to the previous digest, and what a bad Dockerfile, a missing base and a deaf image get."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipway.oci import container
from shipway.oci.images import Images
from tests.e2e.conftest import Instance
from tests.e2e.test_push import make_repo, push
from tests.helpers import commit
from tests.oci.conftest import debian_tar  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e

APP = "docked"
HOST = f"{APP}.localhost"

DOCKERFILE = """\
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 \\
 && rm -rf /var/lib/apt/lists/*
# Config vars named in shipway.yml: a plain one as a build arg, a secret as a build secret.
ARG GREETING=none
RUN --mount=type=secret,id=TOKEN echo "greeting $GREETING, token $(cat /run/secrets/TOKEN)"
# The dependency layer: rebuilt only when requirements.txt changes.
COPY requirements.txt /app/requirements.txt
RUN --mount=type=cache,target=/cache \\
    echo "installed $(wc -l < /app/requirements.txt) requirements" | tee /deps.txt
COPY . /app
WORKDIR /app
EXPOSE 8000
CMD ["python3", "-u", "server.py"]
"""

SERVER = r"""
import json, os, socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def reach(address, port):
    try:
        socket.create_connection((address, port), timeout=5).close()
        return "open"
    except OSError:
        return "closed"

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/probe/"):
            _, _, address, port = self.path.split("/")
            body = {"reach": reach(address, int(port))}
        else:
            body = {"version": open("VERSION").read().strip(), "uid": os.getuid(),
                    "deps": open("/deps.txt").read().strip()}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

print("secret is", os.environ.get("TOKEN"), flush=True)
ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""

FILES = {
    "Dockerfile": DOCKERFILE,
    "server.py": SERVER,
    "requirements.txt": "flask\n",
    "VERSION": "one\n",
    "shipway.yml": "build:\n  args: [GREETING, TOKEN, UNSET]\n",
}


def answer(instance: Instance, path: str = "/") -> Any:
    response = httpx.get(f"{instance.url}{path}", headers={"Host": HOST}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def releases(instance: Instance) -> list[dict[str, Any]]:
    result = instance.cli("releases", "list", "--app", APP, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def image_of(instance: Instance, version: int) -> str:
    found = [r["image"] for r in releases(instance) if r["version"] == version]
    assert found and found[0], f"v{version} has no image"
    image: str = found[0]
    return image


def outward_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.254", 9))  # no packet is sent: this picks the outward address
        address: str = probe.getsockname()[0]
        return address


@pytest.fixture
def based(instance: Instance, debian_tar: Path) -> Instance:  # noqa: F811
    """The shared shipway, with debian:bookworm-slim made from the run's base archive (as
    `shipway images base` makes it, without its 20 s of mmdebstrap for each test)."""
    asyncio.run(Images(instance.data).import_base("debian:bookworm-slim", debian_tar))
    return instance


def test_a_dockerfile_app_builds_runs_and_rolls_back_by_digest(
    based: Instance, tmp_path: Path
) -> None:
    instance = based
    assert instance.cli("apps", "create", APP).returncode == 0
    secret = instance.cli("env", "set", "--app", APP, "--secret", "TOKEN=hunter2hunter2")
    assert secret.returncode == 0, secret.stdout + secret.stderr
    assert instance.cli("env", "set", "--app", APP, "GREETING=hi").returncode == 0
    repo = make_repo(tmp_path / APP, FILES)
    first = push(instance, repo, APP)
    assert first.returncode == 0, first.stderr
    assert "dockerfile app detected (oci)" in first.stderr
    assert "FROM debian:bookworm-slim: sha256:" in first.stderr
    assert "Build args: GREETING" in first.stderr and "Build secrets: TOKEN" in first.stderr
    assert "greeting hi, token ***" in first.stderr and "hunter2" not in first.stderr
    assert "defaults apply: UNSET" in first.stderr
    assert f"is live at http://{HOST}:{instance.port}" in first.stderr
    one = answer(instance)
    assert one["version"] == "one" and one["deps"] == "installed 1 requirements"
    assert one["uid"] == 0  # root inside the container, an unprivileged range outside

    # Only the app's code changed: the dependency layer comes from podman's cache.
    commit(repo, {"VERSION": "two\n"})
    second = push(instance, repo, APP)
    assert second.returncode == 0, second.stderr
    assert "Using cache" in second.stderr and "installed 1 requirements" not in second.stderr
    assert answer(instance)["version"] == "two"
    v1, v2 = image_of(instance, 1), image_of(instance, 2)
    base = next(r["bases"] for r in releases(instance) if r["version"] == 1)
    assert list(base) == ["debian:bookworm-slim"] and base["debian:bookworm-slim"] in first.stderr
    assert v1.startswith("sha256:") and v2.startswith("sha256:") and v1 != v2

    # The network of its own reaches the internet's side, never the host's services.
    assert answer(instance, f"/probe/{outward_address()}/{instance.port}")["reach"] == "closed"
    assert answer(instance, f"/probe/10.0.2.2/{instance.port}")["reach"] == "closed"

    # Its log is masked; its processes are not root outside.
    logs = instance.cli("logs", "--app", APP, "--tail", "200")
    assert "secret is ***" in logs.stdout and "hunter2" not in logs.stdout

    # Rollback runs v1's image again: no build, the same digest.
    builds_before = len(json.loads(instance.cli("builds", "list", "--app", APP, "--json").stdout))
    rolled = instance.cli("rollback", "--app", APP)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert answer(instance)["version"] == "one"
    assert image_of(instance, 3) == v1
    assert len(json.loads(instance.cli("builds", "list", "--app", APP, "--json").stdout)) == (
        builds_before
    )


#: A release that keeps running without a health check: what a bad push must leave live.
WORKER = "worker: sleep 600\n"


@pytest.mark.parametrize(
    ("dockerfile", "procfile", "said"),
    [
        (
            "FROM debian:bookworm-slim\nRUN echo building && false\n",
            WORKER,
            'podman build failed: building at STEP "RUN echo building && false"',
        ),
        ("FROM debian:bookworm-slim\nRUNN echo hi\n", WORKER, 'Unknown instruction: "RUNN"'),
        (
            "FROM registry.invalid/team/base:1\n",
            WORKER,
            "FROM registry.invalid/team/base:1: the image is not on this builder and cannot be "
            "pulled",
        ),
        (
            "FROM debian:bookworm-slim\n",
            "web: echo deaf to $PORT; sleep 600\n",
            "no healthy answer within 3 s; its last output:\ndeaf to 5000",
        ),
    ],
    ids=["failing-run", "syntax", "missing-base", "deaf"],
)
def test_a_bad_image_fails_its_push_and_the_live_one_stays(
    based: Instance, tmp_path: Path, dockerfile: str, procfile: str, said: str
) -> None:
    instance = based
    name = f"bad-{len(dockerfile)}-{len(procfile)}"
    assert instance.cli("apps", "create", name).returncode == 0
    assert instance.cli("apps", "set", name, "--health-timeout", "3").returncode == 0
    files = {"Dockerfile": "FROM debian:bookworm-slim\n", "Procfile": WORKER}
    repo = make_repo(tmp_path / "app", files)
    assert push(instance, repo, name).returncode == 0
    commit(repo, {"Dockerfile": dockerfile, "Procfile": procfile})
    failed = push(instance, repo, name)
    assert failed.returncode != 0
    remote = "\n".join(line.removeprefix("remote: ").rstrip() for line in failed.stderr.split("\n"))
    assert said in remote, failed.stderr
    if "registry.invalid" in dockerfile:
        assert "shipway images import FILE.tar" in remote
    info = json.loads(instance.cli("apps", "info", name, "--json").stdout)
    production = next(e for e in info["environments"] if e["name"] == "production")
    assert production["release"]["version"] == 1
    assert [i["state"] for i in production["instances"]] == ["healthy"]


def test_no_container_outlives_shipway_s_own(based: Instance) -> None:
    names = asyncio.run(
        Images(based.data).podman.run(
            "ps", "--all", "--filter", f"label={container.INSTANCE_LABEL}", "--format", "{{.Names}}"
        )
    ).split()
    assert all(n.startswith((APP, "bad-")) for n in names), names
