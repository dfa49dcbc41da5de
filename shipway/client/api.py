"""Call /api/v1 and turn its errors into one clear line: the server's own message and status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shipway.client.login import resolve
from shipway.errors import ClientError


@dataclass
class Api:
    """A thin client of /api/v1 that raises ClientError with the server's own message."""

    url: str
    token: str
    timeout: float = 30.0

    @classmethod
    def find(cls, data_flag: Path | None = None) -> Api:
        return cls(*resolve(data_flag))

    @property
    def tls(self) -> bool:
        """httpx's `verify`: certificates are checked over HTTPS. Over plain HTTP there is
        nothing to check, and not loading the CA bundle saves each client tens of ms (a
        push's hook makes one)."""
        return self.url.startswith("https:")

    def client(self, **options: Any) -> httpx.Client:
        """A client for several calls to this shipway (OPTIONS go to httpx)."""
        return httpx.Client(verify=self.tls, **options)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON body; None when it has none."""
        response = self.respond(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def respond(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The whole answer, for a caller that reads its headers too; an error status raises.
        KWARGS go to httpx, `headers` among them (the token's is added)."""
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.token}"}
        try:
            response = httpx.request(
                method,
                f"{self.url}/api/v1{path}",
                headers=headers,
                timeout=self.timeout,
                verify=self.tls,
                **kwargs,
            )
        except httpx.HTTPError as e:
            raise ClientError(f"cannot reach shipway at {self.url}: {e}") from e
        if response.status_code >= 400:
            raise ClientError(describe_error(response))
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def describe_error(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()[:200] or response.reason_phrase
    return f"{message} (HTTP {response.status_code})"
