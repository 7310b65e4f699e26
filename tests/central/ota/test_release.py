"""A release built, published, fetched through TUF and installed into a slot."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from central.ota.release import build, publish
from central.ota.repository import Repository, load_signer
from edge.ota.fetch import DirectoryFetcher
from edge.ota.slots import Slots
from edge.ota.updater import Sources, fetch_release

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime.now(UTC)


def test_build_is_reproducible_and_refuses_unknown_kinds(tmp_path: Path) -> None:
    first = build("sim", "1.1.0", min_from="1.0.0", out=tmp_path / "a")
    second = build("sim", "1.1.0", min_from="1.0.0", out=tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    with pytest.raises(ValueError, match="kind"):
        build("toaster", "1.0", min_from="0", out=tmp_path)


def test_publish_fetch_install(tmp_path: Path) -> None:
    served, offline, online = (
        tmp_path / "served",
        tmp_path / "offline",
        tmp_path / "online",
    )
    archive = build("sim", "1.1.0", min_from="1.0.0", out=tmp_path / "dist")
    name = publish(
        archive, repo_dir=served / "image", offline=offline, online=online, now=NOW
    )
    image = Repository(served / "image")
    director = Repository.create(
        served / "director" / "sim-1",
        offline=offline,
        online=online,
        now=NOW,
        online_roles=("targets", "snapshot", "timestamp"),
    )
    info = image.load("targets").signed.targets[name]
    director.add_target(
        name,
        info=info,
        targets_key=load_signer(online / "sim-1-targets.key"),
        snapshot_key=load_signer(online / "sim-1-snapshot.key"),
        timestamp_key=load_signer(online / "sim-1-timestamp.key"),
        now=NOW,
    )
    sources = Sources(
        image_url="http://central/image/metadata/",
        image_targets_url="http://central/image/targets/",
        director_url="http://central/director/sim-1/metadata/",
        image_root=image.root_bytes(),
        director_root=director.root_bytes(),
    )
    fetched = fetch_release(
        name,
        sources=sources,
        cache=tmp_path / "cache",
        fetcher=DirectoryFetcher(served),
    )
    slots = Slots(tmp_path / "node")
    slots.switch(slots.install(fetched.path), deadline=NOW)
    release = json.loads((slots.current / "release.json").read_text())
    assert release == {
        "kinds": ["sim"],
        "min_from": "1.0.0",
        "name": name,
        "version": "1.1.0",
    }
    assert (slots.current / "firmware_sim" / "eventnode.py").is_file()
    assert (slots.current / "edge" / "agent.py").is_file()


def test_release_command_line(tmp_path: Path) -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    base = [sys.executable, "-m", "baling.cli", "release"]
    built = subprocess.run(
        [
            *base,
            "build",
            "--kind",
            "kiosk",
            "--version",
            "1.0.1",
            "--out",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    archive = tmp_path / "dist" / "baling-kiosk-1.0.1.tar"
    published = subprocess.run(
        [
            *base,
            "publish",
            str(archive),
            "--repo",
            str(tmp_path / "repo" / "image"),
            "--offline-keys",
            str(tmp_path / "off"),
            "--online-keys",
            str(tmp_path / "on"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    assert (
        "baling-kiosk-1.0.1.tar"
        in Repository(tmp_path / "repo" / "image").load("targets").signed.targets
    )
    refused = subprocess.run(
        [*base, "build", "--kind", "toaster", "--version", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "expected a kind" in refused.stderr
