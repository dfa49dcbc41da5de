from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shipway.releases.layers import LayerStore, tree_digest
from shipway.releases.manifest import LayerRef, Manifest


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_same_tree_gets_the_same_digest_whatever_its_times(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a", {"app.py": "print(1)", "static/x.css": "b{}"})
    b = make_tree(tmp_path / "b", {"static/x.css": "b{}", "app.py": "print(1)"})
    os.utime(b / "app.py", (1, 1))
    assert tree_digest(a) == tree_digest(b)


def test_any_change_changes_the_digest(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a", {"app.py": "print(1)"})
    before = tree_digest(a)
    (a / "app.py").write_text("print(2)")
    assert tree_digest(a) != before
    (a / "app.py").chmod(0o755)
    assert tree_digest(a) != tree_digest(make_tree(tmp_path / "c", {"app.py": "print(2)"}))


def test_layers_are_stored_once_and_read_only(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    first = store.add(make_tree(tmp_path / "a", {"f": "x"}))
    second = store.add(make_tree(tmp_path / "b", {"f": "x"}))
    assert first == second and store.has(first)
    path = store.path(first)
    assert path.parent == tmp_path / "layers" / "sha256"
    assert not (tmp_path / "b").exists()
    assert not stat.S_IMODE((path / "f").stat().st_mode) & stat.S_IWUSR


def test_bad_digests_are_refused(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    for bad in ("md5:abc", "sha256:short", "sha256:" + "../" * 30):
        with pytest.raises(ValueError):
            store.path(bad)


def test_a_manifest_digest_ignores_the_build_id() -> None:
    layers = (LayerRef("sha256:" + "a" * 64, "app", "/app"),)
    one = Manifest(app="web", stack="python", runtime="Python 3.11", layers=layers, build_id=1)
    two = Manifest(app="web", stack="python", runtime="Python 3.11", layers=layers, build_id=2)
    assert one.digest == two.digest
    assert Manifest.from_json(one.to_json()) == one
