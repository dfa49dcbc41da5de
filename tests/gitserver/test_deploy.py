"""`shipway deploy`: what it packs (as git would) and how it ends, against the fake API."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shipway.cli.deploy import deploy, source_files, tar_stream
from tests.gitserver.conftest import Shipway
from tests.helpers import git

cli = typer.Typer()
cli.command()(deploy)

TREE = {
    ".gitignore": "*.log\nbuild/\n/secret.txt\n!keep.log\n",
    "app.py": "print('hi')",
    "debug.log": "noise",
    "keep.log": "kept by a negation",
    "build/out.js": "generated",
    "secret.txt": "anchored to the root",
    "sub/secret.txt": "not the root one",
    "sub/.gitignore": "local.cfg\n!debug.log\ncache/\n",
    "sub/local.cfg": "ignored below",
    "sub/debug.log": "re-included by the deeper file",
    "sub/other.log": "still ignored from the root",
    "sub/cache/x": "ignored directory",
    "sub/deeper/local.cfg": "ignored, rules reach down",
    "docs/build/index.md": "build/ matches at any depth",
    ".git-keep": "only .git itself is skipped",
}


def make_tree(root: Path) -> Path:
    for name, text in TREE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("app.py")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("not uploaded")
    return root


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name: m for m in archive.getmembers()}


def test_source_files_are_what_git_would_commit(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    ours = list(source_files(root))
    (root / ".git" / "config").unlink()
    (root / ".git").rmdir()
    git(root, "init", "-q")
    git(root, "add", "-A")
    theirs = git(root, "ls-files").stdout.splitlines()
    assert sorted(ours) == sorted(theirs)
    assert "keep.log" in ours and "sub/debug.log" in ours and "sub/secret.txt" in ours
    assert "debug.log" not in ours and "build/out.js" not in ours


def test_the_tar_keeps_contents_links_and_modes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree")
    (root / "big.bin").write_bytes(os.urandom(200_000))
    files = list(source_files(root))
    data = b"".join(tar_stream(root, files))
    listed = members(data)
    assert sorted(listed) == sorted(files)
    assert listed["link"].issym() and listed["link"].linkname == "app.py"
    assert listed["run.sh"].mode == 0o755 and listed["app.py"].mode == 0o644
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        extracted = archive.extractfile("big.bin")
        assert extracted is not None
        assert extracted.read() == (root / "big.bin").read_bytes()


def invoke(ship: Shipway, *args: str) -> tuple[int, str]:
    env = {"SHIPWAY_URL": ship.url, "SHIPWAY_TOKEN": ship.owner, "SHIPWAY_DATA": ""}
    result = CliRunner().invoke(cli, list(args), env=env)
    error = result.exception
    shown = "" if error is None or isinstance(error, SystemExit) else str(error)
    return result.exit_code, result.output + shown


def test_deploy_uploads_the_tree_and_follows_the_build(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("uploaded")
    root = make_tree(tmp_path / "tree")
    code, output = invoke(ship, str(root), "--app", app, "--env", "copy")
    assert code == 0, output
    [upload] = ship.fake.uploads
    assert upload.params == {"source": "upload", "env": "copy"}
    assert sorted(members(upload.tar)) == sorted(source_files(root))
    assert output.splitlines()[1:] == [
        "-----> Deploying to copy of uploaded (build 101)",
        "step one",
        "step two",
        "step three",
        "-----> Release v3 is live at http://uploaded.localhost:8080",
    ]


def test_deploy_exits_non_zero_when_the_build_fails(ship: Shipway, tmp_path: Path) -> None:
    app = ship.create_app("upload-fails")
    ship.fake.script.end = ship.fake.script.status = "failed"
    ship.fake.script.reason = "npm ci exited 1"
    code, output = invoke(ship, str(make_tree(tmp_path / "tree")), "--app", app)
    assert code == 1
    assert output.splitlines()[-1] == "-----> Build failed: npm ci exited 1"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "is not a directory"),
        ("ignored", "holds no files that .gitignore lets through"),
        ("unknown", "no app named 'nobody-home' (HTTP 404)"),
    ],
)
def test_deploy_refusals_are_one_clear_line(
    ship: Shipway, tmp_path: Path, setup: str, message: str
) -> None:
    root = tmp_path / "tree"
    if setup != "missing":
        root.mkdir()
        (root / ".gitignore").write_text("*\n" if setup == "ignored" else "")
        (root / "app.py").write_text("")
    code, output = invoke(ship, str(root), "--app", "nobody-home")
    assert code == 1 and message in output
    assert ship.fake.uploads == []
