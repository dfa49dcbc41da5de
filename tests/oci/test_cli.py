"""`shipway images …` against the real API and podman: what the user reads, and exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shipway.cli.images import rows, size
from shipway.cli.main import app as cli
from shipway.cli.output import console
from shipway.errors import ClientError
from shipway.oci.images import Images
from tests.cli.conftest import Server
from tests.oci.conftest import Archives


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (11_555, "11.6 kB"),
        (85_717_587, "85.7 MB"),
        (4 * 10**9, "4.0 GB"),
    ],
)
def test_sizes_read_as_podmans(count: int, shown: str) -> None:
    assert size(count) == shown


def test_a_row_for_each_name() -> None:
    image = {
        "short_id": "94cdbd802ca8",
        "size": 11_555,
        "created": "2026-12-03T18:55:43+00:00",
        "app": "web",
        "build": "7",
    }
    shown = rows([{**image, "names": ["a:1", "b:2"]}, {**image, "names": [], "app": None}])
    assert [(row["name"], row["created"], row["app"]) for row in shown] == [
        ("a:1", "2026-12-03 18:55:43", "web"),
        ("b:2", "2026-12-03 18:55:43", "web"),
        ("<none>", "2026-12-03 18:55:43", None),
    ]


def test_import_list_rm(
    server: Server,
    storage: Images,
    archives: Archives,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()
    tag = "example.com/team/tiny:2"
    result = runner.invoke(
        cli, ["images", "import", str(archives.docker), "--tag", tag], env=server.env
    )
    assert result.exit_code == 0, result.output
    [image] = json.loads(runner.invoke(cli, ["images", "list", "--json"], env=server.env).stdout)
    assert image["id"] == archives.image_id and image["names"] == ["localhost/tiny:1", tag]
    assert result.stdout == (
        f"Imported localhost/tiny:1, {tag}: {archives.image_id} ({size(image['size'])})\n"
    )

    listed = runner.invoke(cli, ["images", "list"], env=server.env).stdout
    header, _, *lines = [
        line.replace("┃", " ").replace("│", " ").split() for line in listed.splitlines()
    ]
    assert header == ["NAME", "IMAGE", "ID", "SIZE", "CREATED", "APP", "BUILD"]
    assert [(line[0], line[1], line[-2:]) for line in lines] == [
        ("localhost/tiny:1", archives.image_id[7:19], ["web", "7"]),
        (tag, archives.image_id[7:19], ["web", "7"]),
    ]

    removed = runner.invoke(cli, ["images", "rm", tag], env=server.env)
    assert removed.exit_code == 0, removed.output
    assert removed.stdout == f"Untagged {tag}\n"
    removed = runner.invoke(cli, ["images", "rm", "localhost/tiny:1", "--json"], env=server.env)
    assert json.loads(removed.stdout)["deleted"] == [archives.image_id[7:]]
    assert runner.invoke(cli, ["images", "list"], env=server.env).stdout == "No images.\n"


def test_refusals_are_one_line(server: Server, storage: Images) -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["images", "rm", "nothing:1"], env=server.env)
    assert unknown.exit_code == 1
    assert str(unknown.exception) == "no image 'nothing:1' in shipway's storage (HTTP 404)"
    base = runner.invoke(cli, ["images", "base", "debian:sid"], env=server.env)
    assert isinstance(base.exception, ClientError)
    assert str(base.exception) == (
        "shipway cannot make the base image 'debian:sid'; "
        "it makes debian:bookworm, debian:bookworm-slim (HTTP 422)"
    )
    missing = runner.invoke(cli, ["images", "import", "/nonexistent.tar"], env=server.env)
    assert str(missing.exception) == "cannot read /nonexistent.tar: No such file or directory"
