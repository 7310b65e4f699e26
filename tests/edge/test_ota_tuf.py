"""Releases through TUF and the director: accepted, and the attacks refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from tuf.api import exceptions

from central.ota.repository import Repository, load_signer
from edge.ota.fetch import DirectoryFetcher
from edge.ota.updater import Sources, UpdateRefusedError, fetch_release

if TYPE_CHECKING:
    from pathlib import Path

    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import TargetFile

NOW = datetime.now(UTC)
RELEASE = b"release 1.1.0 " * 1000
NAME = "baling-sim-1.1.0.tar"


@dataclass
class World:
    served: Path
    offline: Path
    online: Path
    image: Repository
    director: Repository

    def key(self, repo: str, role: str, *, offline: bool) -> CryptoSigner:
        return load_signer(
            (self.offline if offline else self.online) / f"{repo}-{role}.key"
        )

    def publish(self, name: str, data: bytes) -> None:
        info = self.image.add_target(
            name,
            data=data,
            targets_key=self.key("image", "targets", offline=True),
            snapshot_key=self.key("image", "snapshot", offline=False),
            timestamp_key=self.key("image", "timestamp", offline=False),
            now=NOW,
        )
        self.assign(name, info)

    def assign(
        self, name: str, info: TargetFile | None, data: bytes | None = None
    ) -> None:
        self.director.add_target(
            name,
            info=info,
            data=data,
            targets_key=self.key("sim-1", "targets", offline=False),
            snapshot_key=self.key("sim-1", "snapshot", offline=False),
            timestamp_key=self.key("sim-1", "timestamp", offline=False),
            now=NOW,
            replace_all=True,
        )

    def fetch(self, cache: Path, name: str = NAME) -> Path:
        sources = Sources(
            image_url="http://central/image/metadata/",
            image_targets_url="http://central/image/targets/",
            director_url="http://central/director/sim-1/metadata/",
            image_root=self.image.root_bytes(),
            director_root=self.director.root_bytes(),
        )
        return fetch_release(
            name, sources=sources, cache=cache, fetcher=DirectoryFetcher(self.served)
        ).path


@pytest.fixture
def world(tmp_path: Path) -> World:
    served = tmp_path / "served"
    offline, online = tmp_path / "offline", tmp_path / "online"
    image = Repository.create(served / "image", offline=offline, online=online, now=NOW)
    director = Repository.create(
        served / "director" / "sim-1",
        offline=offline,
        online=online,
        now=NOW,
        online_roles=("targets", "snapshot", "timestamp"),
    )
    w = World(served, offline, online, image, director)
    w.publish(NAME, RELEASE)
    return w


def test_an_assigned_signed_release_is_fetched(world: World, tmp_path: Path) -> None:
    path = world.fetch(tmp_path / "cache")
    assert path.read_bytes() == RELEASE
    assert world.fetch(tmp_path / "cache").read_bytes() == RELEASE  # from the cache


def test_tampered_metadata_is_refused(world: World, tmp_path: Path) -> None:
    newest = max((world.image.metadata).glob("*.targets.json"))
    data = json.loads(newest.read_text())
    data["signed"]["targets"][NAME]["length"] += 1
    newest.write_text(json.dumps(data))
    with pytest.raises(exceptions.RepositoryError):
        world.fetch(tmp_path / "cache")


def test_rolled_back_metadata_is_refused(world: World, tmp_path: Path) -> None:
    old = (world.image.metadata / "timestamp.json").read_text()
    world.publish("baling-sim-1.2.0.tar", b"1.2.0")
    world.fetch(tmp_path / "cache", "baling-sim-1.2.0.tar")  # trusts the newer versions
    (world.image.metadata / "timestamp.json").write_text(old)  # an attacker replays
    with pytest.raises(exceptions.BadVersionNumberError):
        world.fetch(tmp_path / "cache", "baling-sim-1.2.0.tar")


def test_expired_metadata_is_refused(world: World, tmp_path: Path) -> None:
    world.image._refresh(
        world.key("image", "snapshot", offline=False),
        world.key("image", "timestamp", offline=False),
        now=NOW - timedelta(days=3),
    )
    with pytest.raises(exceptions.ExpiredMetadataError):
        world.fetch(tmp_path / "cache")


def test_mix_and_match_is_refused(world: World, tmp_path: Path) -> None:
    world.publish("baling-sim-1.2.0.tar", b"1.2.0")
    versions = sorted(
        world.image.metadata.glob("*.targets.json"),
        key=lambda p: int(p.name.split(".")[0]),
    )
    newest, older = versions[-1], versions[-2]
    newest.write_bytes(
        older.read_bytes()
    )  # the snapshot names a targets version this is not
    with pytest.raises(exceptions.RepositoryError):
        world.fetch(tmp_path / "cache", "baling-sim-1.2.0.tar")


def test_online_keys_alone_cannot_push_an_image(world: World, tmp_path: Path) -> None:
    # Central's online keys assign a release the release manager never signed.
    evil = b"backdoor"
    world.assign("evil.tar", None, data=evil)
    with pytest.raises(UpdateRefusedError, match="not in the image repository"):
        world.fetch(tmp_path / "cache", "evil.tar")
    with pytest.raises(UpdateRefusedError, match="does not assign"):
        world.fetch(tmp_path / "cache2", "baling-sim-0.9.0.tar")
