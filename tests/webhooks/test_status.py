"""Commit statuses as each host's API takes them, recorded by the stand-in host: the path, the
state in the host's words, the auth header; refusals and failures raise StatusError."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipway.errors import ValidationError
from shipway.webhooks.status import State, StatusError, report
from shipway.webhooks.verify import Provider
from tests.githost import StandInHost

REPO = "acme/web"
SHA = "0123456789abcdef0123456789abcdef01234567"

WORDS = {
    Provider.GITHUB: ["pending", "success", "failure", "error"],
    Provider.GITEA: ["pending", "success", "failure", "error"],
    Provider.GITLAB: ["running", "success", "failed", "failed"],
    Provider.BITBUCKET: ["INPROGRESS", "SUCCESSFUL", "FAILED", "FAILED"],
}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[StandInHost]:
    with StandInHost(tmp_path / "host") as host:
        host.add_repo(REPO)
        yield host


async def send(
    host: StandInHost,
    provider: Provider,
    state: State = State.PENDING,
    *,
    repo: str = REPO,
    token: str | None = None,
    target_url: str | None = "https://shipway.example.com/apps/web/deployments/7",
    description: str = "building",
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await report(
            http,
            provider,
            host.api_url(provider),
            repo,
            token or host.token,
            SHA,
            state,
            target_url=target_url,
            description=description,
        )


@pytest.mark.parametrize("provider", list(Provider))
async def test_each_state_reaches_the_host_in_its_words(
    host: StandInHost, provider: Provider
) -> None:
    for state in State:
        await send(host, provider, state, description=f"now {state}")
    assert [call.state for call in host.statuses] == WORDS[provider]
    for call, state in zip(host.statuses, State, strict=True):
        assert (call.provider, call.repo, call.sha) == (provider, REPO, SHA)
        assert call.target_url == "https://shipway.example.com/apps/web/deployments/7"
        assert call.description == f"now {state}"
        assert call.context == "shipway"


async def test_github_sends_its_media_type_and_a_bearer_token(host: StandInHost) -> None:
    await send(host, Provider.GITHUB)
    [call] = host.statuses
    assert call.headers["authorization"] == f"Bearer {host.token}"
    assert call.headers["accept"] == "application/vnd.github+json"
    assert call.body == {
        "state": "pending",
        "target_url": "https://shipway.example.com/apps/web/deployments/7",
        "description": "building",
        "context": "shipway",
    }


async def test_gitlab_names_the_status_and_encodes_nested_groups(host: StandInHost) -> None:
    host.add_repo("group/sub/web")
    await send(host, Provider.GITLAB, State.SUCCESS, repo="group/sub/web")
    [call] = host.statuses
    assert call.repo == "group/sub/web" and call.headers["private-token"] == host.token
    assert call.body["name"] == "shipway" and "context" not in call.body


async def test_bitbucket_gets_a_key_and_always_a_url(host: StandInHost) -> None:
    await send(host, Provider.BITBUCKET, State.FAILURE, target_url=None)
    [call] = host.statuses
    assert call.body["key"] == call.body["name"] == "shipway"
    assert call.body["url"] == f"http://127.0.0.1:{host.port}/bitbucket"
    assert call.headers["authorization"] == f"Bearer {host.token}"


async def test_gitea_uses_the_token_scheme_and_leaves_out_a_missing_url(
    host: StandInHost,
) -> None:
    await send(host, Provider.GITEA, State.ERROR, target_url=None)
    [call] = host.statuses
    assert call.headers["authorization"] == f"token {host.token}"
    assert "target_url" not in call.body


@pytest.mark.parametrize(("provider", "limit"), [(Provider.GITHUB, 140), (Provider.GITLAB, 255)])
async def test_long_descriptions_are_cut_to_the_hosts_limit(
    host: StandInHost, provider: Provider, limit: int
) -> None:
    await send(host, provider, description="x" * 1000)
    [call] = host.statuses
    assert call.description is not None and len(call.description) == limit
    assert call.description.endswith("…")


async def test_a_failing_host_raises_and_a_retry_gets_through(host: StandInHost) -> None:
    host.fail_statuses(1)
    with pytest.raises(StatusError, match="answered 500") as failed:
        await send(host, Provider.GITHUB)
    assert failed.value.status == 500 and host.statuses == []
    await send(host, Provider.GITHUB)
    assert len(host.statuses) == 1


@pytest.mark.parametrize("provider", list(Provider))
async def test_a_wrong_token_is_refused_and_not_repeated(
    host: StandInHost, provider: Provider
) -> None:
    wrong = "glpat-wrong-token-that-must-not-show"
    with pytest.raises(StatusError, match="answered 401") as refused:
        await send(host, provider, token=wrong)
    assert refused.value.status == 401 and wrong not in refused.value.message
    assert host.statuses == []


async def test_an_unknown_repository_is_a_404(host: StandInHost) -> None:
    with pytest.raises(StatusError, match="answered 404") as refused:
        await send(host, Provider.GITEA, repo="acme/missing")
    assert refused.value.status == 404


async def test_a_host_that_does_not_answer_raises_without_a_status() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(StatusError, match="not reached") as failed:
            await report(
                http,
                Provider.GITEA,
                f"http://127.0.0.1:{port}/api/v1",
                REPO,
                "a-token",
                SHA,
                State.SUCCESS,
                target_url=None,
                description="live",
            )
    assert failed.value.status is None


@pytest.mark.parametrize(("repo", "sha"), [("acme/../x", SHA), (REPO, "../../user"), (REPO, "abc")])
async def test_bad_repositories_and_shas_are_refused_before_sending(
    host: StandInHost, repo: str, sha: str
) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(ValidationError):
            await report(
                http,
                Provider.GITHUB,
                host.api_url(Provider.GITHUB),
                repo,
                host.token,
                sha,
                State.SUCCESS,
                target_url=None,
                description="",
            )
