"""npm's version ranges, as package.json's engines.node writes them, against released versions;
the expected answers are node-semver's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipway.builder.semver import Range, parse_version, show

IN = [
    ("", "20.20.2"),
    ("*", "0.0.1"),
    ("x", "20.20.2"),
    (">=18", "20.20.2"),
    (">=18", "18.0.0"),
    (">= 18.17", "18.17.0"),
    (">18", "19.0.0"),
    (">18.2", "18.3.0"),
    ("20", "20.0.0"),
    ("20", "20.20.2"),
    ("20.x", "20.99.1"),
    ("20.X.x", "20.1.1"),
    ("20.*", "20.1.1"),
    ("v20.20.2", "20.20.2"),
    ("=20.20.2", "20.20.2"),
    ("^20.1.0", "20.20.2"),
    ("^20", "20.0.0"),
    ("^0.2.3", "0.2.9"),
    ("^0.0.3", "0.0.3"),
    ("^0.0", "0.0.9"),
    ("^0.x", "0.9.0"),
    ("~20.1.2", "20.1.9"),
    ("~20.1", "20.1.0"),
    ("~20", "20.9.0"),
    ("~>20.1", "20.1.5"),
    ("<21", "20.99.99"),
    ("<=20", "20.99.0"),
    ("<=20.1", "20.1.9"),
    ("<=20.1.2", "20.1.2"),
    (">=18 <21", "20.20.2"),
    (">=18.0.0 <19 || >=20", "20.0.0"),
    ("^16 || ^18 || ^20", "20.20.2"),
    ("18 - 20", "20.9.9"),
    ("18.1 - 20.2.3", "18.1.0"),
    ("18.1 - 20.2.3", "20.2.3"),
    (">=20.0.0-rc.1", "20.0.0"),
    ("<20.0.0-0", "19.9.9"),
    (">=18 || ", "1.0.0"),
]
OUT = [
    (">=22", "20.20.2"),
    (">20", "20.99.0"),
    (">20.1", "20.1.9"),
    ("20", "21.0.0"),
    ("20", "19.9.9"),
    ("20.x", "21.0.0"),
    ("=20.20.2", "20.20.3"),
    ("20.20.2", "20.20.1"),
    ("^20.1.0", "20.0.9"),
    ("^20.1.0", "21.0.0"),
    ("^0.2.3", "0.3.0"),
    ("^0.2.3", "0.2.2"),
    ("^0.0.3", "0.0.4"),
    ("^0.0", "0.1.0"),
    ("~20.1.2", "20.2.0"),
    ("~20.1.2", "20.1.1"),
    ("~20", "21.0.0"),
    ("<21", "21.0.0"),
    ("<20.1", "20.1.0"),
    ("<=20", "21.0.0"),
    ("<=20.1", "20.2.0"),
    (">=18 <20", "20.0.0"),
    (">=18.0.0 <19 || >=21", "20.20.2"),
    ("18 - 20", "21.0.0"),
    ("18.1 - 20.2.3", "20.2.4"),
    ("18.1 - 20.2.3", "18.0.9"),
    ("<20.0.0-0", "20.0.0"),
    (">*", "1.0.0"),
    ("<*", "1.0.0"),
    ("=20.0.0-rc.1", "20.0.0"),
]


@pytest.mark.parametrize(("spec", "version"), IN)
def test_versions_in_the_range(spec: str, version: str) -> None:
    assert Range.parse(spec).matches(parse_version(version))


@pytest.mark.parametrize(("spec", "version"), OUT)
def test_versions_out_of_the_range(spec: str, version: str) -> None:
    assert not Range.parse(spec).matches(parse_version(version))


@pytest.mark.parametrize("spec", ["lts/*", "latest", ">=18<20", "20.1.2.3", "^a.b", "01"])
def test_what_is_not_a_range_is_refused_by_name(spec: str) -> None:
    with pytest.raises(ValueError, match="is not a version"):
        Range.parse(spec)


def test_host_versions() -> None:
    assert parse_version("v20.20.2") == (20, 20, 2, 1)
    assert parse_version("3.11.2") == (3, 11, 2, 1)
    assert show(parse_version("v20.20.2")) == "20.20.2"
    for text in ("20", "20.x.1", "v20.1", "Python 3.11.2", ""):
        with pytest.raises(ValueError):
            parse_version(text)


versions = st.tuples(*[st.integers(0, 30)] * 3)


@given(versions, versions)
def test_caret_and_tilde_agree_with_their_bounds(
    base: tuple[int, int, int], other: tuple[int, int, int]
) -> None:
    written = ".".join(map(str, base))
    candidate = parse_version(".".join(map(str, other)))
    major, minor, _ = base
    first_nonzero = next((i for i, n in enumerate(base) if n), 2)
    same_prefix = other[: first_nonzero + 1] == base[: first_nonzero + 1]
    assert Range.parse(f"^{written}").matches(candidate) == (other >= base and same_prefix)
    assert Range.parse(f"~{written}").matches(candidate) == (
        other >= base and other[:2] == (major, minor)
    )
    assert Range.parse(written).matches(candidate) == (other == base)
    assert Range.parse(f">={written} <{written}").matches(candidate) is False
