"""The red team's note: the ``sim`` node kind may send any event type.

Tests and the demo use ``sim`` in place of every kind on the loopback
listener, so central let a ``sim`` send SOS alarms, positions, plates,
complaints and signal plans. Enrolled at a site (a technician's code of kind
``sim``), such a node was every kind at once. Now a ``sim`` that holds a
fleet certificate sends only the types any node may send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from authworld import build
from sqlmodel import Session
from support.api import register
from support.kiosks import enrol_node

from central.main import load_or_create_ca
from edge.protocol import envelope

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from authworld import World

    from central.ingest.sink import Stored

PRIVILEGED: dict[str, dict[str, Any]] = {
    "sos": {"sos_id": "sos-1", "phase": "raised", "lat": 29.1, "lon": 113.1},
    "position": {"lat": 29.1, "lon": 113.1},
    "plate": {"plate": "湘F12345"},
    "complaint": {"text": "假投诉"},
    "plan": {"version": 1, "state": "applied"},
}


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(sqlite_url, tmp_path)
    ca = load_or_create_ca(w.services.settings, now=w.clock.now())
    enrol_node(w.services.engine, ca, device_id="sim-x", kind="sim", now=w.clock.now())
    register(w.services.engine, "sim-demo", kind="sim", now=w.clock.now())
    yield w
    w.services.engine.dispose()


def _send(world: World, device: str, kind: str, body: dict[str, Any]) -> Stored:
    now = world.clock.now()
    with Session(world.services.engine) as session:
        stored = world.services.sink().accept(
            session, [envelope.make(device, kind, body, now=now)], now
        )
        session.commit()
    return stored


def test_an_enrolled_sim_is_no_handheld_camera_kiosk_or_cabinet(world: World) -> None:
    for kind, body in PRIVILEGED.items():
        refused = _send(world, "sim-x", kind, body)
        assert refused.refused == {"wrong_kind": 1}, kind
        assert not refused.new
        # the loopback simulator of tests and demos still plays any kind
        assert _send(world, "sim-demo", kind, body).new, kind
    ordinary: dict[str, dict[str, Any]] = {"tick": {"seq": 1}, "fault": {"code": "t"}}
    for kind, body in ordinary.items():  # what any node may send, it still does
        assert _send(world, "sim-x", kind, body).new, kind
