"""A builder's records beside the control plane: the store and data dir it shares."""

from __future__ import annotations

from pathlib import Path

from shipway.apps import config
from shipway.apps.secretbox import SecretBox
from shipway.builder.records import AppConfig, Begun
from shipway.deploys import service
from shipway.deploys.lifecycle import BuildStatus, DeploymentStatus
from shipway.logs.writer import LineStore, StoreLines
from shipway.store import Store
from shipway.store.tables import Build, Deployment


class LocalRecords:
    """The store and the data dir of the control plane this builder runs beside."""

    def __init__(self, store: Store, data_dir: Path, lines: LineStore | None = None) -> None:
        """LINES: where log lines go, the store itself unless given (a `shipway builder`
        process relays them through the API)."""
        self.store = store
        self.data_dir = data_dir
        self.lines = lines or StoreLines(store)

    def begin(self, build_id: int, deployment_id: int, attempt: str, builder: str) -> Begun | None:
        """Hold the build for ATTEMPT on BUILDER; None if it ended (superseded) before it
        started."""
        with self.store.transaction() as session:
            build_row = session.get(Build, build_id)
            deployment = session.get(Deployment, deployment_id)
            if build_row is None or deployment is None or deployment.build_id != build_id:
                return None
            if build_row.status == BuildStatus.BUILDING.value:
                # An earlier attempt began it and did not finish: its builder was lost, stopped
                # or cut off for longer than the heartbeat timeout, or the build raised.
                earlier = build_row.builder or "another builder"
                previous = f"the attempt on {earlier} did not finish (stopped or cut off)"
            elif (
                deployment.status == DeploymentStatus.QUEUED.value
                and build_row.status == BuildStatus.QUEUED.value
            ):
                # Named before the move, so that its `build.start` entry says where it runs.
                build_row.builder = builder
                service.move_deployment(session, deployment, DeploymentStatus.BUILDING)
                service.move_build(session, build_row, BuildStatus.BUILDING)
                previous = None
            else:
                return None
            build_row.builder = builder
            build_row.attempt = attempt
            return Begun(previous)

    def standing(self, build_id: int) -> tuple[str, str | None]:
        """The build's status, and the attempt that holds it."""
        with self.store.transaction() as session:
            row = session.get(Build, build_id)
            return (row.status, row.attempt) if row is not None else ("cancelled", None)

    def config(self, app_id: int) -> AppConfig:
        """The app's config vars, secrets decrypted: build args and what to mask."""
        with self.store.transaction() as session:
            snapshot = config.snapshot(session, app_id)
        values = config.environment(snapshot, SecretBox.load(self.data_dir))
        return AppConfig(values, frozenset(k for k, var in snapshot.items() if var["secret"]))

    def source(self, build_id: int, path: str) -> Path:
        """The pushed source archive: here already."""
        return Path(path)

    def publish(self, digests: list[str], layers: Path) -> None:
        """The layers are in the data dir the releases run from already."""

    def publish_image(self, image_id: str, data_dir: Path) -> None:
        """The image is in the podman storage the releases run from already."""
