"""The host check `make up` runs first: what it installs, and what it tells a user to install."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from shipway import system
from shipway.system import Requirement

HERE = Requirement("git", "git pushes and builds", lambda: True)


def missing(package: str, purpose: str) -> Requirement:
    return Requirement(package, purpose, lambda: package in installed)


installed: set[str] = set()


@pytest.fixture(autouse=True)
def host(monkeypatch: pytest.MonkeyPatch) -> None:
    installed.clear()
    monkeypatch.setattr(
        system,
        "REQUIREMENTS",
        (HERE, missing("slirp4netns", "a network of its own for each sandbox")),
    )
    monkeypatch.setattr(system, "tun_problem", lambda: None)


def test_a_complete_host_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    installed.add("slirp4netns")
    assert system.main([]) == 0
    assert capsys.readouterr().out == ""


def test_not_root_it_names_the_one_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert system.main(["--install"]) == 1
    out = capsys.readouterr().out
    assert "shipway needs slirp4netns for a network of its own for each sandbox" in out
    assert "sudo apt-get install -y slirp4netns" in out


def test_as_root_it_installs_one_line_per_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[list[str]] = []

    def apt(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(argv)
        if argv[:2] == ["apt-get", "install"]:
            installed.add(argv[-1])
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(subprocess, "run", apt)
    assert system.main(["--install"]) == 0
    assert ran == [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slirp4netns"]]
    lines = capsys.readouterr().out.splitlines()
    assert "shipway: installing slirp4netns (a network of its own for each sandbox)" in lines


def test_a_failed_install_still_stops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def apt(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 100, "", "E: Unable to locate package\n")

    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(subprocess, "run", apt)
    assert system.main(["--install"]) == 1
    out = capsys.readouterr().out
    assert "cannot install slirp4netns: E: Unable to locate package" in out
    assert "apt-get install -y slirp4netns" in out


def test_an_unusable_tun_device_stops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    installed.add("slirp4netns")
    monkeypatch.setattr(system, "tun_problem", lambda: "/dev/net/tun does not exist: …")
    assert system.main([]) == 1
    assert "/dev/net/tun does not exist" in capsys.readouterr().out
