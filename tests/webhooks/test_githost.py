"""Naming a connected repository, its host's API root and its clone URL; bad input is refused
with a reason, and credentials never come back in one."""

from __future__ import annotations

import pytest

from shipway.errors import ValidationError
from shipway.webhooks.githost import api_base, check_repo, check_sha, clone_url, web_root
from shipway.webhooks.verify import Provider


@pytest.mark.parametrize("provider", list(Provider))
def test_owner_and_name_are_taken(provider: Provider) -> None:
    assert check_repo(provider, "acme-inc/web_app.v2") == "acme-inc/web_app.v2"


def test_only_gitlab_nests_groups() -> None:
    assert check_repo(Provider.GITLAB, "group/sub/deeper/name") == "group/sub/deeper/name"
    with pytest.raises(ValidationError, match="OWNER/NAME"):
        check_repo(Provider.GITHUB, "group/sub/name")


@pytest.mark.parametrize(
    ("repo", "problem"),
    [
        ("", "1 to 255"),
        ("a/" + "b" * 300, "1 to 255"),
        ("acme", "GROUP/NAME"),
        ("/acme/web", "leading or trailing /"),
        ("acme/web/", "leading or trailing /"),
        ("acme//web", "not a name"),
        ("acme/..", "not a name"),
        ("acme/a..b", "no \\.\\."),
        ("acme/-web", "starting with"),
        ("acme/.hidden", "starting with"),
        ("acme/we b", "not a name"),
        ("acme/web?x=1", "not a name"),
        ("acme/wéb", "not a name"),
        ("acme/web.git", "without .git"),
    ],
)
def test_bad_repositories_are_refused_by_what_is_wrong(repo: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        check_repo(Provider.GITLAB, repo)


def test_a_sha_is_full_lower_case_hex() -> None:
    assert check_sha("a" * 40) == "a" * 40
    assert check_sha("b" * 64) == "b" * 64
    for bad in ("a" * 7, "A" * 40, "g" * 40, "../" + "a" * 37, "a" * 41):
        with pytest.raises(ValidationError, match="not a full commit sha"):
            check_sha(bad)


def test_hosted_services_have_default_api_roots() -> None:
    assert api_base(Provider.GITHUB, None) == "https://api.github.com"
    assert api_base(Provider.GITLAB, None) == "https://gitlab.com/api/v4"
    assert api_base(Provider.BITBUCKET, None) == "https://api.bitbucket.org/2.0"
    assert api_base(Provider.GITEA, "https://codeberg.org/api/v1/") == "https://codeberg.org/api/v1"


def test_gitea_needs_an_api_url() -> None:
    with pytest.raises(ValidationError, match="--api-url"):
        api_base(Provider.GITEA, None)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://git.example.com/api/v1", "https://"),
        ("git.example.com/api/v1", "https://"),
        ("https:///api/v1", "name a host"),
        ("https://git.example.com:99999/api/v1", "not a URL"),
        ("https://git.example.com/api/v1?private=1", "query"),
        ("https://git.example.com/api/v1#top", "fragment"),
        ("https://git.example.com/api/v1?", "query"),
    ],
)
def test_bad_api_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        api_base(Provider.GITEA, url)


def test_credentials_in_the_api_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValidationError, match="credentials") as refused:
        api_base(Provider.GITLAB, "https://me:s3cret-token@gitlab.example.com/api/v4")
    assert "s3cret-token" not in str(refused.value)


@pytest.mark.parametrize(
    ("provider", "api", "clone"),
    [
        (Provider.GITHUB, "https://api.github.com", "https://github.com/o/n.git"),
        (Provider.GITHUB, "https://ghe.example.com/api/v3", "https://ghe.example.com/o/n.git"),
        (Provider.GITLAB, "https://gitlab.com/api/v4", "https://gitlab.com/o/n.git"),
        (
            Provider.GITLAB,
            "https://git.example.com/gl/api/v4",
            "https://git.example.com/gl/o/n.git",
        ),
        (Provider.BITBUCKET, "https://api.bitbucket.org/2.0", "https://bitbucket.org/o/n.git"),
        (Provider.BITBUCKET, "http://127.0.0.1:8/bb/2.0", "http://127.0.0.1:8/bb/o/n.git"),
        (Provider.GITEA, "https://codeberg.org/api/v1", "https://codeberg.org/o/n.git"),
    ],
)
def test_clone_urls_are_the_web_root_and_the_repository(
    provider: Provider, api: str, clone: str
) -> None:
    assert clone_url(provider, api, "o/n") == clone
    assert clone.startswith(web_root(provider, api) + "/")


def test_gitlab_clone_urls_keep_nested_groups() -> None:
    url = clone_url(Provider.GITLAB, "https://gitlab.com/api/v4", "group/sub/name")
    assert url == "https://gitlab.com/group/sub/name.git"
