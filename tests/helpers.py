"""Small helpers the test modules share."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(api: TestClient, role: str, **extra: Any) -> str:
    response = api.post("/api/v1/tokens", json={"name": f"{role}-token", "role": role, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])
