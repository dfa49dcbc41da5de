from __future__ import annotations

from pathlib import Path

import pytest

from shipway.builder import procfile
from shipway.builder.stacks import NoStack, detect
from shipway.errors import ValidationError


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_detection_order(tmp_path: Path) -> None:
    node = detect(
        tree(
            tmp_path / "n",
            {"package.json": "{}", "package-lock.json": "{}", "requirements.txt": "flask"},
        )
    )
    assert node.name == "node" and node.deps_mount == "/workspace/node_modules"
    python = detect(tree(tmp_path / "p", {"requirements.txt": "flask", "index.html": ""}))
    assert python.name == "python" and python.lockfile == "requirements.txt"
    assert detect(tree(tmp_path / "s", {"index.html": "<p>hi"})).static_root == "."
    assert detect(tree(tmp_path / "pub", {"public/index.html": "<p>hi"})).static_root == "public"


def test_pyproject_dependencies_are_the_key(tmp_path: Path) -> None:
    text = '[project]\nname = "x"\ndependencies = ["flask>=3"]\n'
    a = tree(tmp_path / "a", {"pyproject.toml": text, "app.py": "1"})
    b = tree(tmp_path / "b", {"pyproject.toml": text, "app.py": "2"})
    c = tree(tmp_path / "c", {"pyproject.toml": text.replace(">=3", ">=3.1")})
    assert detect(a).deps_key(a) == detect(b).deps_key(b) != detect(c).deps_key(c)
    assert "flask>=3" in detect(a).install


def test_the_key_follows_the_lockfile_only(tmp_path: Path) -> None:
    a = tree(tmp_path / "a", {"requirements.txt": "flask==3.1.3", "app.py": "1"})
    b = tree(tmp_path / "b", {"requirements.txt": "flask==3.1.3", "app.py": "2"})
    c = tree(tmp_path / "c", {"requirements.txt": "flask==3.1.2"})
    assert detect(a).deps_key(a) == detect(b).deps_key(b)
    assert detect(a).deps_key(a) != detect(c).deps_key(c)


def test_no_stack_says_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(NoStack, match=r"requirements\.txt or pyproject\.toml"):
        detect(tree(tmp_path, {"README.md": "hi"}))
    with pytest.raises(NoStack, match=r"package-lock\.json"):
        detect(tree(tmp_path / "n", {"package.json": "{}"}))


def test_procfile() -> None:
    assert procfile.parse("# c\nweb: gunicorn app:app\n\nworker: python w.py\n") == {
        "web": "gunicorn app:app",
        "worker": "python w.py",
    }
    with pytest.raises(ValidationError, match="line 2"):
        procfile.parse("web: x\nnot a process line\n")


def test_a_dockerfile_comes_first(tmp_path: Path) -> None:
    files = {"Dockerfile": "FROM debian:bookworm-slim\n", "package.json": "{}", "index.html": ""}
    found = detect(tree(tmp_path / "d", files))
    assert (found.name, found.runtime) == ("dockerfile", "oci")
    assert found.deps_key(tmp_path / "d") is None


def test_shipway_yml_may_name_the_dockerfile(tmp_path: Path) -> None:
    source = tree(tmp_path, {"docker/web.Dockerfile": "FROM x\n", "requirements.txt": "flask"})
    assert detect(source, "docker/web.Dockerfile").name == "dockerfile"
    with pytest.raises(NoStack, match=r"names the Dockerfile docker/nope, which is not a file"):
        detect(source, "docker/nope")


def test_no_stack_names_the_dockerfile_too(tmp_path: Path) -> None:
    with pytest.raises(NoStack, match=r"Dockerfile \(built with podman\)"):
        detect(tree(tmp_path, {"README.md": "hi"}))
