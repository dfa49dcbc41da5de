"""What shipway reads in a Dockerfile: the bases its stages start from, pinned, and labels."""

from __future__ import annotations

from shipway.oci import dockerfile
from shipway.oci.dockerfile import Base

MULTI = """\
# syntax=docker/dockerfile:1
ARG NODE=20
FROM --platform=linux/amd64 debian:bookworm-slim AS deps
RUN echo hi
FROM deps AS build
FROM node:${NODE}
from scratch
FROM registry.example.com:5000/team/base \\
    AS final
COPY --from=build /x /x
FROM debian:bookworm-slim
"""


def test_the_bases_are_named_once_in_order() -> None:
    assert dockerfile.bases(MULTI) == [
        Base("debian:bookworm-slim"),
        Base("registry.example.com:5000/team/base"),
    ]


def test_a_tag_that_moves_is_floating() -> None:
    assert Base("debian").floating
    assert Base("debian:latest").floating
    assert Base("registry.example.com:5000/team/base").floating
    assert not Base("debian:bookworm-slim").floating
    assert not Base("debian@sha256:" + "a" * 64).floating


def test_pinning_replaces_the_name_and_keeps_the_rest() -> None:
    pinned = dockerfile.pin(MULTI, {"debian:bookworm-slim": "sha256:" + "b" * 64})
    assert f"FROM --platform=linux/amd64 sha256:{'b' * 64} AS deps\n" in pinned
    assert pinned.endswith(f"FROM sha256:{'b' * 64}\n")
    assert "FROM deps AS build\n" in pinned and "from scratch\n" in pinned


def test_one_label_step_at_the_end() -> None:
    text = dockerfile.labelled("FROM x\nCMD true\n\n", {"io.shipway.app": 'we"b', "b": "7"})
    assert text == 'FROM x\nCMD true\nLABEL io.shipway.app="we\\"b" b="7"\n'


def test_every_stage_is_scoped_from_its_start() -> None:
    text = "FROM a AS one\nRUN x\nFROM --platform=linux/amd64 \\\n  b\nRUN y\n"
    assert dockerfile.scoped(text, {"io.shipway.app-id": "7"}) == (
        'FROM a AS one\nLABEL io.shipway.app-id="7"\nRUN x\n'
        'FROM --platform=linux/amd64 \\\n  b\nLABEL io.shipway.app-id="7"\nRUN y\n'
    )
