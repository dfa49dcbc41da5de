"""Release manifests: the release phase is read from the Procfile and set apart from the
process types that run instances; manifests written before it was set apart still read."""

from __future__ import annotations

from shipway.builder import procfile
from shipway.releases.manifest import NODE_WEB, LayerRef, Manifest
from shipway.runtime.placement import Placement

PROCFILE = """
release: python manage.py migrate --noinput
web: gunicorn app:app --bind 0.0.0.0:$PORT
worker: python worker.py
"""


def manifest(processes: dict[str, str], stack: str = "python") -> Manifest:
    return Manifest(
        app="shop",
        stack=stack,
        runtime="python3.11",
        layers=(LayerRef(digest="sha256:" + "a" * 64, role="app", mount="/app"),),
        processes=processes,
    )


def placement(of: Manifest, formation: dict[str, int], environment: str) -> Placement:
    return Placement(
        app_id=1,
        app="shop",
        environment=environment,
        host="shop.localhost",
        release_id=1,
        version=1,
        manifest=of,
        env={},
        secrets=(),
        formation=formation,
        plan="free",
        health_path="/",
        health_timeout=30,
        idle_timeout=None,
    )


def test_the_release_command_is_read_and_is_not_a_process_type() -> None:
    made = manifest(procfile.parse(PROCFILE))
    assert made.release_command == "python manage.py migrate --noinput"
    assert made.commands() == {
        "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "worker": "python worker.py",
    }


def test_no_instance_of_release_runs_whatever_the_formation_says() -> None:
    made = manifest(procfile.parse(PROCFILE))
    scaled = {"web": 2, "release": 3}
    assert placement(made, scaled, "production").counts() == {"web": 2, "worker": 1}
    assert placement(made, scaled, "feature-x").counts() == {"web": 1, "worker": 1}


def test_a_procfile_without_release_has_no_release_command() -> None:
    made = manifest(procfile.parse("web: python3 server.py\n"))
    assert made.release_command is None
    assert made.commands() == {"web": "python3 server.py"}


def test_a_node_app_with_only_a_release_line_still_runs_npm_start() -> None:
    made = manifest({"release": "npm run migrate"}, stack="node")
    assert made.release_command == "npm run migrate"
    assert made.commands() == {"web": NODE_WEB}


def test_manifests_in_the_store_from_before_load_as_they_were_written() -> None:
    # As releases recorded earlier hold them: `release` among the processes, or no
    # processes at all.
    stored = {
        "app": "shop",
        "stack": "python",
        "runtime": "python3.11",
        "layers": [{"digest": "sha256:" + "b" * 64, "role": "app", "mount": "/app"}],
        "processes": {"web": "python3 server.py", "release": "python3 migrate.py"},
        "static_root": None,
        "source_sha": "1a2b3c4",
        "build_id": 7,
    }
    loaded = Manifest.from_json(stored)
    assert loaded.release_command == "python3 migrate.py"
    assert loaded.commands() == {"web": "python3 server.py"}
    assert loaded.to_json() == stored, "the stored form is unchanged"

    oldest = {k: v for k, v in stored.items() if k not in ("processes", "source_sha", "build_id")}
    bare = Manifest.from_json(oldest)
    assert bare.release_command is None and bare.commands() == {}


def test_the_release_command_is_part_of_what_makes_a_release() -> None:
    made = manifest(procfile.parse(PROCFILE))
    assert Manifest.from_json(made.to_json()).digest == made.digest
    without = manifest(procfile.parse("web: gunicorn app:app --bind 0.0.0.0:$PORT\n"))
    assert without.digest != made.digest, "a new release command is a new release"
