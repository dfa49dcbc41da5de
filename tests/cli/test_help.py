"""Every command's --help renders, and the commands keep the conventions users know from
heroku and flyctl: `-a` wherever `--app` is taken, `--json` wherever something is printed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from shipway.cli.main import app as cli
from shipway.cli.main import for_args

#: Commands with no --json: git's credential helper speaks git's protocol, not shipway's, and
#: the node is a process `shipway up` starts, printing only its log.
NO_JSON = {"git-credential", "node"}


def walk(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command and group under GROUP, hidden ones too, named by the words that reach it."""
    for name, command in sorted(group.commands.items()):
        yield " ".join((*path, name)), command
        if is_group(command):
            yield from walk(command, (*path, name))


def is_group(command: Any) -> bool:
    return hasattr(command, "commands")


COMMANDS = dict(walk(typer.main.get_command(cli)))


def test_the_whole_tree_is_walked() -> None:
    assert {"fn deploy", "apps info", "open", "status", "builds logs", "audit search"} <= set(
        COMMANDS
    )
    assert len(COMMANDS) > 70


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_renders(name: str) -> None:
    """Through the branch of the tree a run builds for these words, as `shipway` does."""
    words = name.split()
    result = CliRunner().invoke(for_args(words), [*words, "--help"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Usage:" in result.stdout
    if len(words) == 2:  # a group's command: the group's help still lists all of its own
        group = CliRunner().invoke(for_args(words), [words[0], "--help"]).stdout
        assert all(sub in group for sub in COMMANDS[words[0]].commands)


def test_a_run_builds_only_the_branch_its_first_word_names() -> None:
    assert set(typer.main.get_command(for_args(["apps", "list"])).commands) == {"apps"}
    assert set(typer.main.get_command(for_args(["git-credential"])).commands) == {"git-credential"}
    for whole in ([], ["--help"], ["--version"], ["nope"]):
        assert for_args(whole) is cli
    assert len(cli.registered_groups) > 1  # the whole app is left as it was


def test_app_is_also_a_wherever_it_is_taken() -> None:
    without = [
        name
        for name, command in COMMANDS.items()
        for param in command.params
        if "--app" in param.opts and "-a" not in param.opts
    ]
    assert without == []


def test_every_command_that_prints_takes_json() -> None:
    without = [
        name
        for name, command in COMMANDS.items()
        if not is_group(command)
        and name not in NO_JSON
        and not any("--json" in param.opts for param in command.params)
    ]
    assert without == []
