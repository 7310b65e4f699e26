"""The camera agent without a broker: frames in, one sealed event per vehicle out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from camera_node.agent import CameraAgent
from camera_node.reader import PlateReader
from camera_node.settings import CameraSettings
from edge.clock import ManualClock
from edge.node import build_agent
from edge.protocol import decode
from edge.protocol.evidence import verify
from edge.protocol.messages import CameraConfig
from firmware_sim.camera import SceneCamera, Vehicle

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


@pytest.fixture
def rig(
    tmp_path: Path, reader: PlateReader
) -> Iterator[tuple[CameraAgent, SceneCamera]]:
    settings = CameraSettings(
        device_id="cam-1",
        kind="camera",
        data_dir=tmp_path / "cam",
        broker_port=1,  # never connected here
        camera_url=f"spool:{tmp_path / 'spool'}",
    )
    agent = build_agent(CameraAgent, settings, clock=ManualClock(T0), reader=reader)
    agent.config = CameraConfig(fps=5, track_gap_s=1.0, silent_s=5)
    yield agent, SceneCamera(tmp_path / "spool", seed=4)
    agent.outbox.close()
    agent.trust.close()


def run(agent: CameraAgent, seconds: float) -> None:
    clock = agent.clock
    assert isinstance(clock, ManualClock)
    for _ in range(int(seconds / 0.2)):
        agent.step()
        clock.advance(0.2)


def events(agent: CameraAgent) -> list[tuple[str, dict[str, object]]]:
    out = []
    for entry in agent.outbox.peek(100):
        env = decode(entry.payload, max_bytes=4 * 1024 * 1024)
        out.append((env.type, env.body))
    return out


def test_one_vehicle_many_frames_one_signed_read(
    rig: tuple[CameraAgent, SceneCamera],
) -> None:
    agent, camera = rig
    camera.drive(Vehicle("湘FD4439", "blue", frames=4))
    run(agent, 3.0)
    found = events(agent)
    assert [t for t, _ in found] == ["plate"]
    body = found[0][1]
    assert body["text"] == "湘FD4439"
    assert body["colour"] == "blue"
    assert body["frames"] == 4
    package = body["evidence"]
    assert isinstance(package, dict)
    checked = verify(package, device="cam-1", issuers=[])
    assert checked.trust == "self"  # this node is not enrolled
    assert set(checked.images) == {"plate", "scene"}
    assert checked.images["scene"][:2] == b"\xff\xd8"


def test_corrupt_frames_and_silence_are_faults_that_clear(
    rig: tuple[CameraAgent, SceneCamera],
) -> None:
    agent, camera = rig
    camera.drive(Vehicle("湘A12345", "blue", frames=1))
    run(agent, 0.6)
    assert agent.faults() == set()
    camera.corrupt()
    run(agent, 0.6)
    assert agent.corrupt == 1
    assert "frame_corrupt" in agent.faults()
    run(agent, 6.0)  # nothing arrives
    assert "camera_silent" in agent.health().faults
    camera.drive(Vehicle("湘B54321", "yellow", frames=2))
    run(agent, 3.0)
    assert "camera_silent" not in agent.faults()
    assert [b["text"] for t, b in events(agent) if t == "plate"] == [
        "湘A12345",
        "湘B54321",
    ]
