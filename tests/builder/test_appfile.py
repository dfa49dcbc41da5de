"""shipway.yml: build settings read from the source, and what a bad one gets."""

from __future__ import annotations

import re
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
    settings = appfile.read(write(tmp_path, "build:\n  private: [dependencies, build]\n"))
    assert settings.private == {"dependencies", "build"}


def test_build_commands_are_kept_in_order(tmp_path: Path) -> None:
    text = (
        "build:\n"
        "  commands:\n"
        "    - python manage.py collectstatic --noinput\n"
        "    - echo done > built.txt\n"
    )
    settings = appfile.read(write(tmp_path, text))
    assert settings.commands == (
        "python manage.py collectstatic --noinput",
        "echo done > built.txt",
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("build: [\n", "cannot be parsed"),
        ("- a\n- b\n", "must be a mapping"),
        ("bild: {}\n", "unknown setting bild; known: build, functions"),
        (
            "build:\n  privat: []\n",
            "unknown setting privat; known: args, commands, context, dockerfile, needs, private, "
            "target",
        ),
        ("build:\n  needs: eu\n", "build.needs must be a list of words"),
        ("build:\n  private: dependencies\n", "must be a list of step names"),
        ("build:\n  private: [deps, checkout]\n", "unknown steps checkout, deps"),
        ("build: 3\n", "must be a mapping"),
        ("build:\n  commands: npm run build\n", "build.commands must be a list of shell commands"),
        ("build:\n  commands: [[make]]\n", "build.commands must be a list of shell commands"),
        ("build:\n  commands: [make, 3]\n", "build.commands must be a list of shell commands"),
        ("build:\n  commands: ['  ']\n", "build.commands must be a list of shell commands"),
        ("build:\n  commands: {a: make}\n", "build.commands must be a list of shell commands"),
        ("build:\n  dockerfile: /etc/passwd\n", "build.dockerfile must be a path inside"),
        ("build:\n  dockerfile: ../x/Dockerfile\n", "build.dockerfile must be a path inside"),
        ("build:\n  dockerfile: 3\n", "build.dockerfile must be a path inside"),
        ("build:\n  context: ../..\n", "build.context must be a path inside"),
        ("build:\n  target: 'a b'\n", "build.target must name a stage"),
        ("build:\n  args: NODE_ENV\n", "build.args must be a list of config var names"),
        ("build:\n  args: [NODE-ENV]\n", "build.args must be a list of config var names"),
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


def test_functions_are_read_with_their_handlers(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "report.py").write_text("def handler(event):\n    return 1\n")
    text = (
        "functions:\n"
        "  report:\n"
        "    handler: fn/report.py\n"
        "    timeout: 60\n"
        "    environment: {REGION: eu}\n"
        "    events:\n"
        "      - daily: {rate: '0 6 * * *', params: {cell: a}}\n"
    )
    [report] = appfile.read(write(tmp_path, text)).functions
    assert (report.name, report.runtime, report.timeout) == ("report", "python", 60)
    assert report.source.startswith("def handler")
    assert report.environment == {"REGION": "eu"}
    assert report.triggers == {"daily": ("0 6 * * *", {"cell": "a"})}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("{handler: ../outside.js}", "../outside.js is not a file of the app's source"),
        ("{handler: /etc/passwd}", "/etc/passwd is not a file of the app's source"),
        ("{handler: link.js}", "link.js is not a file of the app's source"),
        ("{handler: missing.js}", "cannot read its handler missing.js"),
        ("{handler: f.txt}", "cannot tell the runtime of 'f.txt'"),
        ("{handler: f.js, colour: red}", "unknown settings colour"),
        ("{handler: f.js, events: {a: b}}", "`events` must be a list"),
        ("{handler: f.js, events: [{a: {params: {}}}]}", "event 'a' needs `rate: SPEC`"),
        ("{handler: f.js, public: maybe}", "`public` must be true or false"),
        ("{runtime: js}", "needs `handler: FILE`"),
    ],
)
def test_a_bad_function_says_what_is_wrong(tmp_path: Path, spec: str, says: str) -> None:
    source = tmp_path / "app"
    source.mkdir()
    (tmp_path / "outside.js").write_text("function handler() {}\n")
    (source / "link.js").symlink_to(tmp_path / "outside.js")
    (source / "f.txt").write_text("")
    (source / "f.js").write_text("function handler() {}\n")
    with pytest.raises(ValidationError, match=re.escape(says)):
        appfile.read(write(source, f"functions:\n  f: {spec}\n"))


def test_a_bad_function_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="function name must be"):
        appfile.read(write(tmp_path, "functions:\n  Bad Name: {handler: f.js}\n"))


def test_the_dockerfile_its_context_and_target(tmp_path: Path) -> None:
    text = "build:\n  dockerfile: docker/web.Dockerfile\n  context: docker\n  target: prod\n"
    settings = appfile.read(write(tmp_path, text))
    assert (settings.dockerfile, settings.context, settings.target) == (
        "docker/web.Dockerfile",
        "docker",
        "prod",
    )
    assert appfile.read(write(tmp_path, "build: {}\n")).context == "."
    args = appfile.read(write(tmp_path, "build:\n  args: [NODE_ENV, TOKEN, NODE_ENV]\n")).args
    assert args == ("NODE_ENV", "TOKEN")
