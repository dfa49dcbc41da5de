"""shipway.yml: build settings read from the source, and what a bad one gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.builder import appfile
from shipway.errors import ValidationError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "shipway.yml").write_text(text)
    return tmp_path


def test_no_file_or_an_empty_one_means_defaults(tmp_path: Path) -> None:
    assert appfile.read(tmp_path) == appfile.AppFile()
    assert appfile.read(write(tmp_path, "")) == appfile.AppFile()
    assert appfile.read(write(tmp_path, "build: {}\n")) == appfile.AppFile()


def test_private_steps(tmp_path: Path) -> None:
    settings = appfile.read(write(tmp_path, "build:\n  private: [dependencies]\n"))
    assert settings.private == {"dependencies"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("build: [\n", "cannot be parsed"),
        ("- a\n- b\n", "must be a mapping"),
        ("bild: {}\n", "unknown setting bild; known: build, functions"),
        ("build:\n  privat: []\n", "unknown setting privat; known: private"),
        ("build:\n  private: dependencies\n", "must be a list of step names"),
        ("build:\n  private: [deps, checkout]\n", "unknown steps checkout, deps"),
        ("build: 3\n", "must be a mapping"),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ValidationError) as failed:
        appfile.read(write(tmp_path, text))
    assert says in failed.value.message


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "shipway.yml").write_text("#" * (appfile.MAX_BYTES + 1))
    with pytest.raises(ValidationError, match="larger than"):
        appfile.read(tmp_path)
