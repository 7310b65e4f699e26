"""A node's update loop against central's real repositories (files, no HTTP).

The node's :class:`OtaClient` runs with a manual clock; a "restart" is a
new client after :meth:`Slots.recover`, as ``baling supervise`` does it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from central.ota.release import build, publish
from central.ota.repository import Repository
from central.ota.service import OtaService
from edge.clock import ManualClock
from edge.errors import CommandError
from edge.ota.client import OtaClient
from edge.ota.fetch import DirectoryFetcher
from edge.ota.slots import Slots
from edge.settings import NodeSettings

# python-tuf's client checks metadata expiry (timestamp: one day) against the
# real clock, so the manual clock starts at the real time: a fixed date here
# made every update fail a day after it was written.
T0 = datetime.now(UTC).replace(microsecond=0)
DEVICE = "sim-1"


class World:
    """Central's OTA files, one node's data directory, and what it reported."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.clock = ManualClock(T0)
        self.central = OtaService(clock=self.clock, data_dir=tmp_path / "central")
        self.offline = tmp_path / "offline"
        self.events: list[dict[str, Any]] = []
        self.health: str | None = None
        self.deferral: str | None = None
        self.fetcher = DirectoryFetcher(tmp_path / "central")
        self.settings = NodeSettings(
            device_id=DEVICE,
            kind="sim",
            data_dir=tmp_path / "node",
            ota_url="http://central/ota/",
            ota_slots_dir=tmp_path / "node" / "release",
            ota_settle_s=5,
            ota_deadline_s=60,
        )

    def release(self, version: str, *, drill: bool = False) -> str:
        archive = build(
            "sim", version, min_from="0", out=self.tmp / "dist", drill=drill
        )
        return publish(
            archive,
            repo_dir=self.central.image_dir,
            offline=self.offline,
            online=self.tmp / "central" / "ota-online-keys",
            now=self.clock.now(),
        )

    def pin_roots(self) -> None:
        ota = self.settings.data_dir / "ota"
        ota.mkdir(parents=True, exist_ok=True)
        (ota / "image-root.json").write_bytes(
            Repository(self.central.image_dir).root_bytes()
        )
        (ota / "director-root.json").write_bytes(
            self.central.director(DEVICE).root_bytes()
        )

    def boot(self) -> OtaClient:
        """Start the node (the supervisor settles the slots first)."""
        Slots(self.settings.ota_slots_dir or Path()).recover(self.clock.now())
        return OtaClient(
            self.settings,
            clock=self.clock,
            emit=self.events.append,
            fetcher=self.fetcher,
        )

    def turn(self, client: OtaClient) -> None:
        client.step(deferral=lambda: self.deferral, health=lambda: self.health)

    def until_installed(self, client: OtaClient) -> None:
        deadline = time.monotonic() + 60
        while not client.restart and time.monotonic() < deadline:
            self.turn(client)
            time.sleep(0.01)
        assert client.restart, self.states()

    def states(self) -> list[str]:
        return [e["state"] for e in self.events]


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.release("1.1.0")
    w.pin_roots()
    return w


def update(world: World, release: str) -> OtaClient:
    """Assign, command, download, install, restart; return the node on trial."""
    world.central.assign(DEVICE, release)
    node = world.boot()
    assert node.command({"release": release, "rollout": 7}) == {"state": "queued"}
    world.until_installed(node)
    return world.boot()


def commit(world: World, node: OtaClient) -> None:
    """A healthy node on trial, long enough to keep the release."""
    world.turn(node)
    world.clock.advance(6)
    world.turn(node)
    assert node.job is None, world.states()


def test_a_good_release_installs_restarts_and_commits(world: World) -> None:
    node = update(world, "baling-sim-1.1.0.tar")
    assert node.job is not None
    assert node.job.state == "trial"
    world.turn(node)
    world.clock.advance(6)
    world.turn(node)
    assert node.job is None
    assert world.states() == [
        "queued",
        "downloading",
        "installed",
        "trial",
        "committed",
    ]
    assert {e["rollout"] for e in world.events} == {7}
    assert world.events[-1]["version"] == "1.1.0"
    assert node.running()["version"] == "1.1.0"
    assert node.slots is not None
    assert node.slots.trial() is None
    # the same command again is answered from what runs
    assert node.command({"release": "baling-sim-1.1.0.tar", "rollout": 8}) == {
        "state": "committed"
    }


def test_the_next_release_comes_as_a_delta_and_is_byte_for_byte(
    world: World,
) -> None:
    node = update(world, "baling-sim-1.1.0.tar")
    commit(world, node)
    full_first = world.events[2]
    assert full_first["via"] == "full"
    # one module changes in 1.2.0
    source = world.tmp / "src"
    import shutil  # noqa: PLC0415

    root = Path(__file__).resolve().parents[3]
    for package in ("edge", "baling", "firmware_sim"):
        shutil.copytree(
            root / package, source / package, ignore=shutil.ignore_patterns("*.pyc")
        )
    module = source / "firmware_sim" / "eventnode.py"
    module.write_text(module.read_text() + "\n# 1.2.0: a fix\n", encoding="utf-8")
    archive = build("sim", "1.2.0", min_from="0", out=world.tmp / "dist", source=source)
    publish(
        archive,
        repo_dir=world.central.image_dir,
        offline=world.offline,
        online=world.tmp / "central" / "ota-online-keys",
        now=world.clock.now(),
    )
    world.events.clear()
    node = update(world, "baling-sim-1.2.0.tar")
    installed = world.events[2]
    assert installed["via"] == "delta"
    assert installed["bytes"] < 0.25 * archive.stat().st_size
    assert node.job is not None
    installed_bytes = (
        world.settings.data_dir / "ota" / "archives" / "baling-sim-1.2.0.tar"
    ).read_bytes()
    assert installed_bytes == archive.read_bytes()


def test_a_drill_release_fails_health_and_rolls_back(world: World) -> None:
    node = update(world, "baling-sim-1.1.0.tar")
    commit(world, node)
    world.release("1.3.0", drill=True)
    world.events.clear()
    node = update(world, "baling-sim-1.3.0.tar")
    assert node.running()["version"] == "1.3.0"
    world.clock.advance(30)
    world.turn(node)
    assert node.job is not None  # unhealthy, but the deadline has not passed
    world.clock.advance(31)
    world.turn(node)
    assert node.restart
    last = world.events[-1]
    assert last["state"] == "rolled_back"
    assert "fault drill" in last["reason"]
    assert world.boot().running()["version"] == "1.1.0"


def test_an_unhealthy_node_rolls_back_to_the_factory_install(world: World) -> None:
    world.health = "faults: camera_offline"
    node = update(world, "baling-sim-1.1.0.tar")
    world.clock.advance(61)
    world.turn(node)
    assert world.events[-1] == {
        "state": "rolled_back",
        "release": "baling-sim-1.1.0.tar",
        "rollout": 7,
        "version": "1.1.0",
        "reason": "health check failed: faults: camera_offline",
    }
    assert world.boot().running() == {}  # the factory install runs again


def test_a_release_that_does_not_start_is_reported_after_the_supervisor_rolls_back(
    world: World,
) -> None:
    update(world, "baling-sim-1.1.0.tar")  # booted once on trial, then crashed…
    slots = Slots(world.settings.ota_slots_dir or Path())
    slots.recover(world.clock.now())  # … booted again, crashed again
    assert slots.recover(world.clock.now()) == "rolled_back"
    (slots.root / "last.json").write_text(
        json.dumps({"reason": "the new release did not stay up (exit status 1)"})
    )
    world.events.clear()
    node = OtaClient(
        world.settings, clock=world.clock, emit=world.events.append
    )  # the old release starts
    assert world.events == [
        {
            "state": "rolled_back",
            "release": "baling-sim-1.1.0.tar",
            "rollout": 7,
            "version": "1.1.0",
            "reason": "the new release did not stay up (exit status 1)",
        }
    ]
    assert node.job is None


def test_a_busy_node_defers_until_it_is_free(world: World) -> None:
    world.central.assign(DEVICE, "baling-sim-1.1.0.tar")
    node = world.boot()
    node.command({"release": "baling-sim-1.1.0.tar", "rollout": 3})
    world.deferral = "a citizen is using the kiosk"
    for _ in range(3):
        world.turn(node)
        world.clock.advance(31)
    assert world.states() == ["queued", "deferred"]  # said once, not every turn
    assert world.events[-1]["reason"] == "a citizen is using the kiosk"
    world.deferral = None
    world.clock.advance(31)
    world.until_installed(node)
    assert world.states()[-2:] == ["downloading", "installed"]


def test_refusals_name_what_was_wrong(world: World, tmp_path: Path) -> None:
    node = world.boot()
    for args, message in [
        ({"release": "rm -rf /"}, "expected release"),
        ({"release": "baling-kiosk-1.0.0.tar"}, "not a sim release"),
        ({"release": "baling-sim-1.1.0.tar", "rollout": "x"}, "rollout as an integer"),
    ]:
        with pytest.raises(CommandError, match=message):
            node.command(args)
    # the director never assigned it: downloaded nothing, reported why
    node.command({"release": "baling-sim-1.1.0.tar", "rollout": 1})
    deadline = time.monotonic() + 30
    while "failed" not in world.states() and time.monotonic() < deadline:
        world.turn(node)
        time.sleep(0.01)
    assert "does not assign" in world.events[-1]["reason"]
    unsupervised = NodeSettings(
        device_id=DEVICE, kind="sim", data_dir=tmp_path / "other"
    )
    bare = OtaClient(unsupervised, clock=world.clock, emit=world.events.append)
    with pytest.raises(CommandError, match="baling supervise"):
        bare.command({"release": "baling-sim-1.1.0.tar"})


def test_deadline_is_absolute_after_restarts(world: World) -> None:
    """A trial's deadline is wall time: restarting does not extend it."""
    world.health = "no link to the broker"
    update(world, "baling-sim-1.1.0.tar")
    world.clock.advance(61)
    node = world.boot()  # the supervisor rolls back at boot, past the deadline
    assert world.events[-1]["state"] == "rolled_back"
    assert node.job is None
    assert world.clock.now() > T0 + timedelta(seconds=60)
