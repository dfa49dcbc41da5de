"""Dispatch rules: ordered, first match wins, default pool otherwise; a bad file is named."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from shipway.builder import appfile
from shipway.errors import ValidationError
from shipway.fleet.dispatch import Rule, Rules, load, parse
from shipway.fleet.pools import DEFAULT_POOL
from shipway.fleet.sizing import Policy

RULES = Rules(
    (
        Rule(pool="fast", plan="pro"),
        Rule(pool="eu", needs="eu-registry"),
        Rule(pool="eu", region="eu"),
    )
)


@pytest.mark.parametrize(
    ("plan", "region", "needs", "pool"),
    [
        ("pro", "eu", (), "fast"),  # the first match wins
        ("free", "us", ["eu-registry"], "eu"),
        ("free", "eu", (), "eu"),
        ("free", "us", ["other"], DEFAULT_POOL),
    ],
)
def test_the_first_matching_rule_picks_the_pool(
    plan: str, region: str, needs: list[str], pool: str
) -> None:
    assert RULES.pool_for(plan, region, needs)[0] == pool


def test_no_rules_means_the_default_pool() -> None:
    assert Rules().pool_for("pro", "eu") == (DEFAULT_POOL, None)
    assert not Rules().use_needs and RULES.use_needs


def test_rules_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    path.write_text("rules:\n  - {plan: pro, pool: fast}\n  - {pool: big}\n")
    rules = load(path)
    assert rules.rules == (Rule(pool="fast", plan="pro"), Rule(pool="big"))
    assert rules.rules[0].describe() == "plan=pro" and rules.rules[1].describe() == "any build"
    assert load(None) == Rules()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([{"pool": "x"}], "expected `rules:`"),
        ({"rules": [{"plan": "pro"}]}, "rule 1: pool must be"),
        ({"rules": [{"pool": "Fast Pool"}]}, "rule 1: pool must be"),
        ({"rules": [{"pool": "x", "colour": "red"}]}, "rule 1 has unknown keys colour"),
        ({"rules": [{"pool": "x"}, {"pool": "y", "plan": 3}]}, "rule 2: plan must be a word"),
        ({"rules": ["fast"]}, "rule 1 must be a mapping"),
    ],
)
def test_a_bad_rule_is_named(data: object, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        parse(data, "fleet.yml")


def test_pools_sit_beside_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    path.write_text("rules:\n  - {plan: pro, pool: fast}\npools:\n  fast: {min: 1, max: 6}\n")
    rules = load(path)
    assert rules.rules == (Rule(pool="fast", plan="pro"),)
    assert rules.pools == {"fast": Policy(min=1, max=6)}
    assert parse({"pools": {"default": {}}}, "fleet.yml") == Rules(pools={"default": Policy()})
    assert parse({}, "fleet.yml") == Rules()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"rules": [], "pool": {}}, "expected `rules:`, a list of rules, and/or `pools:`"),
        ({"pools": {"default": {"max": -1}}}, "fleet.yml: pool default: max must be"),
        ({"rules": {"pool": "x"}, "pools": {}}, "expected `rules:`, a list of rules$"),
    ],
)
def test_a_bad_pools_key_is_named(data: object, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        parse(data, "fleet.yml")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read the fleet rules"):
        load(tmp_path / "missing.yml")


def archive(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "source.tar"
    with tarfile.open(path, "w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_what_a_build_needs_is_read_from_its_archive(tmp_path: Path) -> None:
    needs = "build:\n  needs: [eu-registry]\n"
    assert appfile.needs_in(archive(tmp_path, {"app.py": "", "./shipway.yml": needs})) == {
        "eu-registry"
    }
    assert appfile.needs_in(archive(tmp_path, {"app.py": ""})) == frozenset()
    assert appfile.needs_in(archive(tmp_path, {"shipway.yml": "build: [nope"})) == frozenset()
    assert appfile.needs_in(tmp_path / "not-there.tar") == frozenset()
