"""A Python runtime's virtualenv is made once per machine and copied into each install: a
first build in any organization starts from it, the layer is the same as a virtualenv made
in place, and a seed that cannot be made fails the build with the reason."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from shipway.builder.pipeline import BuildFailed
from shipway.builder.seeds import SeedFailed, Seeds
from shipway.builder.stacks import Stack, detect
from tests.builder.conftest import Builder, Log

#: No requirement to install (no registry needed), and a build command that runs the app's
#: virtualenv's own pip: the layer must hold a working virtualenv, pip included.
APP = {
    "requirements.txt": "# nothing to install\n",
    "shipway.yml": "build:\n  commands:\n    - pip --version > pip.txt\n",
    "app.py": "print('hi')\n",
}
PREPARING = "(once)"


def preparing(log: Log) -> list[str]:
    return [line for line in log.text if line.endswith(PREPARING)]


def _tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.fixture
def python(tmp_path: Path) -> Stack:
    """The stack of a Python app that asks for no particular Python."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "requirements.txt").write_text("")
    return detect(source)


async def test_first_builds_of_every_organization_start_from_one_seed(builder: Builder) -> None:
    first, second = Log(), Log()
    one = await builder.build(APP, first, app_id=1, organization_id=1)
    other = await builder.build(APP, second, app_id=2, organization_id=2)
    [said] = preparing(first)
    assert said.startswith("-----> Preparing Python 3.")
    assert preparing(second) == []
    assert not one.cache_warm and not other.cache_warm
    assert len(list((builder.data / "seeds").iterdir())) == 1
    # Each organization installed on its own and got the very same tree: the seed is copied
    # whole, and a layer is named by its contents.
    assert builder.layer(one, "deps") == builder.layer(other, "deps")
    assert any(
        name.startswith("venv/lib/python3.") and name.endswith("/site-packages/pip/__init__.py")
        for name in _tree(builder.layer(one, "deps"))
    )
    for result in (one, other):
        venv = builder.layer(result, "deps") / "venv"
        assert (venv / "bin" / "python").is_symlink()
        assert (venv / "pyvenv.cfg").is_file()
        pip = (builder.layer(result, "app") / "pip.txt").read_text()
        assert pip.startswith("pip ") and "/deps/venv/lib/python3." in pip


async def test_a_seed_that_cannot_be_made_says_why_and_leaves_nothing(
    builder: Builder, python: Stack, tmp_path: Path
) -> None:
    broken = replace(python, seed=("/bin/sh", "-c", "echo no room for a venv >&2; exit 4"))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(SeedFailed, match=r"cannot prepare Python 3.*: no room for a venv"):
        await Seeds(builder.data).plant(broken, into, Log())
    assert list((builder.data / "seeds").iterdir()) == []
    assert list(into.iterdir()) == []


async def test_two_builds_that_need_the_seed_at_once_both_get_it(builder: Builder) -> None:
    logs = [Log(), Log()]
    results = await asyncio.gather(
        *(
            builder.build(APP, log, app_id=n + 1, organization_id=n + 1)
            for n, log in enumerate(logs)
        )
    )
    assert len(list((builder.data / "seeds").iterdir())) == 1
    assert not list((builder.data / "seeds").glob(".in-*"))
    for result in results:
        assert (builder.layer(result, "app") / "pip.txt").read_text().startswith("pip ")


async def test_a_build_whose_seed_cannot_be_made_fails_and_names_it(builder: Builder) -> None:
    (builder.data / "seeds").write_text("not a directory")
    with pytest.raises(BuildFailed, match=r"cannot prepare Python 3.*: .*File exists"):
        await builder.build(APP, Log())
