"""Which interpreter an app gets: the version it asks for among the host's, or a clear refusal
that lists what the host has. The host here is a pair of directories of small programs that
report versions, as python3.X and node do."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.builder import runtimes
from shipway.builder.stacks import detect
from shipway.errors import ValidationError
from tests.builder.conftest import node_app


def program(directory: Path, name: str, says: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """/usr/local/bin and /usr/bin of a host with Pythons 3.11.2 and 3.12.1, nodes 20 and 18."""
    local, usr = tmp_path / "local-bin", tmp_path / "usr-bin"
    program(usr, "python3.11", "Python 3.11.2")
    program(local, "python3.12", "Python 3.12.1")
    program(usr, "python3", "Python 3.11.2")
    program(usr, "python3.11-config", "not an interpreter")
    program(usr, "node", "v20.20.2")
    program(usr, "node18", "v18.19.1")
    program(local, "node16", "v16.20.2")
    program(usr, "nodejs", "v20.20.2")
    monkeypatch.setattr(runtimes, "BIN_DIRS", (str(local), str(usr)))
    monkeypatch.setattr(runtimes, "PYTHON", str(usr / "python3"))
    return local, usr


def source(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_an_app_that_asks_for_nothing_gets_the_default_python(
    host: tuple[Path, Path], tmp_path: Path
) -> None:
    chosen = runtimes.python(source(tmp_path / "app", {}))
    assert chosen.path == runtimes.PYTHON and chosen.runtime == "Python 3.11.2"


@pytest.mark.parametrize(
    ("files", "version"),
    [
        ({".python-version": "3.12\n"}, "Python 3.12.1"),
        ({".python-version": "# pinned\n\n3.11.2\n"}, "Python 3.11.2"),
        ({"runtime.txt": "python-3.12.1\n"}, "Python 3.12.1"),
        ({"runtime.txt": "python-3.11"}, "Python 3.11.2"),
        ({".python-version": "3.12", "runtime.txt": "python-3.11.2"}, "Python 3.12.1"),
    ],
)
def test_the_python_asked_for_is_chosen(
    host: tuple[Path, Path], tmp_path: Path, files: dict[str, str], version: str
) -> None:
    local, usr = host
    chosen = runtimes.python(source(tmp_path / "app", files))
    assert chosen.runtime == version
    assert Path(chosen.path).parent == (local if "3.12" in version else usr)


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({"runtime.txt": "python-3.9.1"}, "runtime.txt asks for python-3.9.1; this host has: "),
        ({".python-version": "3.11.3"}, ".python-version asks for 3.11.3; this host has: "),
        ({".python-version": "3.10"}, ".python-version asks for 3.10; this host has: "),
    ],
)
def test_a_python_the_host_lacks_fails_listing_those_it_has(
    host: tuple[Path, Path], tmp_path: Path, files: dict[str, str], says: str
) -> None:
    with pytest.raises(runtimes.NoRuntime) as failed:
        runtimes.python(source(tmp_path / "app", files))
    assert failed.value.message == says + "3.11.2, 3.12.1"


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({".python-version": "pypy3.9"}, ".python-version names 'pypy3.9'"),
        ({".python-version": ">=3.10"}, ".python-version names '>=3.10'"),
        ({".python-version": ""}, ".python-version names ''"),
        ({"runtime.txt": "3.11.2"}, "runtime.txt names '3.11.2'; write a Python version such"),
        ({"runtime.txt": "ruby-3.2"}, "runtime.txt names 'ruby-3.2'"),
    ],
)
def test_a_version_file_that_names_no_version_says_so(
    host: tuple[Path, Path], tmp_path: Path, files: dict[str, str], says: str
) -> None:
    with pytest.raises(ValidationError) as failed:
        runtimes.python(source(tmp_path / "app", files))
    assert failed.value.message.startswith(says)


@pytest.mark.parametrize(
    ("engines", "version"),
    [(None, "v20.20.2"), (">=18", "v20.20.2"), ("18.x", "v18.19.1"), ("<18 || 18", "v18.19.1")],
)
def test_node_prefers_the_default_among_those_engines_allows(
    host: tuple[Path, Path], engines: str | None, version: str
) -> None:
    _, usr = host
    assert runtimes.default_node() == str(usr / "node")
    assert runtimes.node(engines, runtimes.default_node()).runtime == version


def test_the_newest_node_that_fits_is_chosen_when_the_default_does_not(
    host: tuple[Path, Path],
) -> None:
    assert runtimes.node("<20", runtimes.default_node()).runtime == "v18.19.1"


def test_a_node_the_host_lacks_fails_listing_those_it_has(host: tuple[Path, Path]) -> None:
    with pytest.raises(runtimes.NoRuntime) as failed:
        runtimes.node(">=22", runtimes.default_node())
    assert failed.value.message == (
        "package.json's engines.node asks for >=22; this host has: 16.20.2, 18.19.1, 20.20.2"
    )
    with pytest.raises(ValidationError, match=r"engines\.node is not a version range"):
        runtimes.node("lts/*", runtimes.default_node())


def test_a_node_other_than_the_default_is_linked_into_the_dependency_layer(
    host: tuple[Path, Path], tmp_path: Path
) -> None:
    _, usr = host
    app = source(
        tmp_path / "app", node_app("a", engines={"node": "^18.0.0"}, scripts={"build": "vite"})
    )
    stack = detect(app)
    assert stack.runtime == "v18.19.1" and stack.build == ("npm run build",)
    assert stack.links == ((".bin/node", str(usr / "node18")),)
    assert str(usr / "node18") in stack.install and "ci" in stack.install
    default = detect(source(tmp_path / "b", node_app("b")))
    assert default.runtime == "v20.20.2" and default.links == () and default.build == ()
    assert default.install[:2] == ("/usr/bin/npm", "ci")


def test_the_dependency_key_follows_the_chosen_python(
    host: tuple[Path, Path], tmp_path: Path
) -> None:
    files = {"requirements.txt": "flask==3.1.3\n"}
    a = source(tmp_path / "a", {**files, ".python-version": "3.11"})
    b = source(tmp_path / "b", {**files, ".python-version": "3.12"})
    assert detect(a).deps_key(a) != detect(b).deps_key(b)
    assert "python3.12 -m venv /deps/venv" in " ".join(detect(b).seed)


@pytest.mark.parametrize(
    ("package", "says"),
    [
        ("{", "package.json cannot be parsed"),
        ("[]", "package.json must hold a JSON object"),
        ('{"engines": {"node": 20}}', "engines.node must be a version range"),
    ],
)
def test_a_package_json_that_cannot_be_read_says_why(
    host: tuple[Path, Path], tmp_path: Path, package: str, says: str
) -> None:
    app = source(tmp_path / "app", {**node_app("a"), "package.json": package})
    with pytest.raises(ValidationError, match=says):
        detect(app)
