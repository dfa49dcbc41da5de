"""A stand-in git host for tests: one real HTTP server on 127.0.0.1 playing GitHub, GitLab,
Bitbucket Cloud and Gitea at once, each under a path prefix. It serves real bare repositories
for fetching through `git http-backend` (Basic auth, the token as the password) and takes
commit-status calls (each host's token header), recording them. Real TCP, so a shipway running
in another process can use it too."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote

from shipway.webhooks.githost import API_SUFFIX
from shipway.webhooks.verify import Provider

#: The user each host documents beside a token for git over HTTPS; kept apart from shipway's
#: own table so that a mistake there fails here.
GIT_USER = {
    Provider.GITHUB: "x-access-token",
    Provider.GITLAB: "oauth2",
    Provider.BITBUCKET: "x-token-auth",
    Provider.GITEA: "oauth2",
}

_SHA = "(?P<sha>[0-9a-f]{40,64})"
_STATUS_PATH = {
    Provider.GITHUB: re.compile(rf"/repos/(?P<repo>[^/]+/[^/]+)/statuses/{_SHA}"),
    Provider.GITLAB: re.compile(rf"/projects/(?P<repo>[^/]+)/statuses/{_SHA}"),
    Provider.BITBUCKET: re.compile(
        rf"/repositories/(?P<repo>[^/]+/[^/]+)/commit/{_SHA}/statuses/build"
    ),
    Provider.GITEA: re.compile(rf"/repos/(?P<repo>[^/]+/[^/]+)/statuses/{_SHA}"),
}
_GIT_PATH = re.compile(r"/(?P<repo>.+\.git)/(?P<rest>info/refs|git-upload-pack|HEAD|objects/.+)")


@dataclass(frozen=True)
class StatusCall:
    """One commit status the host took, in the host's own words."""

    provider: Provider
    repo: str
    sha: str
    state: str
    target_url: str | None
    description: str | None
    #: GitHub's and Gitea's context, GitLab's name, Bitbucket's key.
    context: str | None
    body: dict[str, Any]
    headers: dict[str, str]


class StandInHost:
    """The server; `with StandInHost(root) as host:` runs it on a free port."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root
        self.token = token or secrets.token_urlsafe(24)
        self.statuses: list[StatusCall] = []
        #: The size of each git-upload-pack answer, in order.
        self.pack_bytes: list[int] = []
        self._failing = 0
        self._lock = threading.Lock()
        self._repos: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def api_url(self, provider: Provider) -> str:
        """The API root to connect an app of PROVIDER with."""
        return f"http://127.0.0.1:{self.port}/{provider}{API_SUFFIX[provider]}"

    def add_repo(self, repo: str) -> Path:
        """A new bare repository for OWNER/NAME, served under every host's prefix."""
        path = self.root / f"{repo}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True, env=_git_env()
        )
        self._repos.add(repo)
        return path

    def fail_statuses(self, n: int) -> None:
        """Answer the next N status calls with 500."""
        with self._lock:
            self._failing = n

    def __enter__(self) -> StandInHost:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _take_status(
        self, provider: Provider, path: str, headers: dict[str, str], raw: bytes
    ) -> int:
        """Take one status call; the HTTP status to answer."""
        found = _STATUS_PATH[provider].fullmatch(path)
        if found is None:
            return 404
        if not self._status_auth(provider, headers):
            return 401
        repo = unquote(found["repo"])
        if repo not in self._repos:
            return 404
        with self._lock:
            if self._failing > 0:
                self._failing -= 1
                return 500
        if headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
        else:
            body = dict(parse_qsl(raw.decode()))
        call = StatusCall(
            provider=provider,
            repo=repo,
            sha=found["sha"],
            state=body.get("state", ""),
            target_url=body.get("target_url", body.get("url")),
            description=body.get("description"),
            context=body.get("context", body.get("name", body.get("key"))),
            body=body,
            headers=headers,
        )
        with self._lock:
            self.statuses.append(call)
        return 201

    def _status_auth(self, provider: Provider, headers: dict[str, str]) -> bool:
        if provider is Provider.GITLAB:
            return headers.get("private-token") == self.token
        scheme = "token" if provider is Provider.GITEA else "Bearer"
        return headers.get("authorization") == f"{scheme} {self.token}"

    def _git_auth(self, provider: Provider, headers: dict[str, str]) -> bool:
        user_token = f"{GIT_USER[provider]}:{self.token}".encode()
        return headers.get("authorization") == f"Basic {base64.b64encode(user_token).decode()}"

    def _serve_git(
        self, method: str, path_info: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run `git http-backend` for one request: its status, headers and body."""
        env = _git_env() | {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            # As the hosts do, a commit a branch has moved on from can still be fetched.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "uploadpack.allowReachableSHA1InWant",
            "GIT_CONFIG_VALUE_0": "true",
            "PATH_INFO": path_info,
            "REQUEST_METHOD": method,
            "QUERY_STRING": query,
            "CONTENT_TYPE": headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_GIT_PROTOCOL": headers.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": headers.get("content-encoding", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, capture_output=True, env=env, timeout=120
        )
        head, blank, payload = done.stdout.partition(b"\r\n\r\n")
        if not blank:
            return 500, [("Content-Type", "text/plain")], done.stderr
        status, answer = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                answer.append((name, value.strip()))
        if path_info.endswith("/git-upload-pack"):
            with self._lock:
                self.pack_bytes.append(len(payload))
        return status, answer, payload


def _git_env() -> dict[str, str]:
    """The environment without the test run's own git settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return env | {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def _handler(host: StandInHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            body = self._body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            path, _, query = self.path.partition("?")
            prefix, _, rest = path.lstrip("/").partition("/")
            if prefix not in set(Provider):
                self._answer(404)
                return
            provider = Provider(prefix)
            api = API_SUFFIX[provider].lstrip("/") + "/"
            if rest.startswith(api) and self.command == "POST":
                self._answer(
                    host._take_status(provider, "/" + rest.removeprefix(api), headers, body)
                )
            elif _GIT_PATH.fullmatch("/" + rest) is None or "git-receive-pack" in self.path:
                self._answer(404)
            elif not host._git_auth(provider, headers):
                self._answer(401, [("WWW-Authenticate", 'Basic realm="git"')])
            else:
                self._answer(*host._serve_git(self.command, "/" + rest, query, headers, body))

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _answer(
            self, status: int, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
        ) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
