"""The pre-receive hook reads the pushed refs git hands it."""

from __future__ import annotations

from shipway.gitserver.hook import RefUpdate, read_updates


def test_read_updates_keeps_well_formed_lines() -> None:
    updates = read_updates([f"{'0' * 40} {'b' * 40} refs/heads/a/b\n", "garbage\n", ""])
    assert updates == [RefUpdate("0" * 40, "b" * 40, "refs/heads/a/b")]
    assert updates[0].branch == "a/b" and not updates[0].deleted
    assert RefUpdate("b" * 40, "0" * 40, "refs/tags/v1").branch is None
    assert RefUpdate("b" * 64, "0" * 64, "refs/heads/x").deleted
