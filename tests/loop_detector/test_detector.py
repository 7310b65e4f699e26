"""Detector cards over Modbus RTU: bins, derived figures, diagnostics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from edge.clock import ManualClock
from edge.node import build_agent
from edge.protocol import decode
from firmware_sim.detector import DetectorCard
from loop_detector.agent import DetectorAgent
from loop_detector.registers import READ_COUNT, CardReading, LaneReading, parse
from loop_detector.settings import DetectorSettings
from loop_detector.traffic import Binner, Diagnoser

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 11, 30, 0, 0, 0, tzinfo=UTC)


def card(*lanes: tuple[int, int, bool]) -> CardReading:
    return CardReading(
        0, tuple(LaneReading(c, o, p, None, "loop", 0) for c, o, p in lanes)
    )


def test_the_register_map_is_checked() -> None:
    with pytest.raises(ValueError, match="expected 72 registers"):
        parse([0] * 10)
    with pytest.raises(ValueError, match="card reports 9 lanes"):
        parse([0, 9] + [0] * (READ_COUNT - 2))


def test_minute_and_quarter_bins_with_derived_figures() -> None:
    binner = Binner()
    old = card((0, 0, False), (2**32 - 1, 0, False))
    out: list[tuple[str, dict[str, Any]]] = []
    for minute in range(15):
        new = card(
            (old.lanes[0].count + 10, old.lanes[0].occupied_ms + 6000, False),
            ((old.lanes[1].count + 2) % 2**32, 0, False),  # wraps past 2³²
        )
        at = T0.replace(minute=minute, second=30)
        out += binner.add(old, new, at)
        old = new
    out += binner.add(old, old, T0.replace(minute=15))
    minutes = [body for kind, body in out if kind == "detector"]
    assert len(minutes) == 15
    lane1 = minutes[0]["lanes"][0]
    assert lane1 == {
        "lane": 1,
        "count": 10,
        "flow_vph": 600,
        "occupancy_pct": 10.0,
        "speed_kmh": None,
        "headway_s": 6.0,
    }
    assert minutes[0]["lanes"][1]["count"] == 2
    (quarter,) = [body for kind, body in out if kind == "detector_15m"]
    assert quarter["start"] == T0.isoformat()
    assert quarter["lanes"][0]["count"] == 150
    assert quarter["lanes"][0]["flow_vph"] == 600


def test_diagnostics_raise_and_clear_once() -> None:
    d = Diagnoser(stuck_on_s=60, stuck_off_s=300)
    quiet = card((0, 0, False), (0, 0, False))
    stuck = card((0, 0, True), (0, 0, False))
    assert d.check(quiet, stuck, 0, 1) == []
    assert d.check(stuck, stuck, 61, 1) == [
        {"code": "stuck_on", "lane": 1, "active": True}
    ]
    assert d.check(stuck, stuck, 62, 1) == []  # said once
    assert d.check(stuck, quiet, 63, 1) == [
        {"code": "stuck_on", "lane": 1, "active": False}
    ]
    chatter = card((0, 0, False), (50, 0, False))
    assert d.check(quiet, chatter, 64, 1) == [
        {"code": "chattering", "lane": 2, "active": True}
    ]
    # lane 1 silent for 5 minutes while lane 2 counts: stuck off
    t, old = 64.0, chatter
    changes: list[dict[str, Any]] = []
    for _ in range(40):
        t += 10
        new = card((0, 0, False), (old.lanes[1].count + 1, 0, False))
        changes += d.check(old, new, t, 10)
        old = new
    assert {"code": "stuck_off", "lane": 1, "active": True} in changes
    assert {"code": "chattering", "lane": 2, "active": False} in changes


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[DetectorAgent, DetectorCard, ManualClock]]:
    sim = DetectorCard(4, sensor="microwave")
    sim.start()
    clock = ManualClock(T0)
    agent = build_agent(
        DetectorAgent,
        DetectorSettings(
            device_id="det-1",
            kind="loop_detector",
            data_dir=tmp_path / "node",
            modbus_url=sim.path,
            parity="N",  # a pty line carries no parity (see firmware_sim.detector)
            stopbits=2,
            timeout_s=0.3,
            stuck_on_s=30,
        ),
        clock=clock,
    )
    yield agent, sim, clock
    agent.client.close()  # type: ignore[no-untyped-call]
    agent.outbox.close()
    agent.trust.close()
    sim.stop()


def run(agent: DetectorAgent, clock: ManualClock, seconds: int) -> None:
    for _ in range(seconds):
        agent.tick()
        clock.advance(1)


def events(agent: DetectorAgent, type_: str) -> list[dict[str, Any]]:
    out = []
    for entry in agent.outbox.peek(10_000):  # the link is down: all still queued
        env = decode(entry.payload)
        if env.type == type_:
            out.append(dict(env.body))
    return out


def test_the_node_reads_the_card_over_modbus_and_bins_the_traffic(
    node: tuple[DetectorAgent, DetectorCard, ManualClock],
) -> None:
    agent, sim, clock = node
    run(agent, clock, 2)
    for second in range(58):
        if second % 6 == 0:
            sim.vehicle(1, speed_kmh=36.0)
        if second % 20 == 0:
            sim.vehicle(3, speed_kmh=50.0, over_s=0.6)
        run(agent, clock, 1)
    run(agent, clock, 3)
    (minute,) = events(agent, "detector")
    lanes = {lane["lane"]: lane for lane in minute["lanes"]}
    assert lanes[1]["count"] == 10
    assert lanes[1]["flow_vph"] == 600
    assert lanes[1]["speed_kmh"] == 36.0
    assert lanes[3]["count"] == 3
    assert lanes[3]["occupancy_pct"] == 3.0
    assert lanes[2]["count"] == 0
    assert agent.card_ok
    assert agent.faults() == set()


def test_a_stuck_loop_and_a_dead_card_become_faults(
    node: tuple[DetectorAgent, DetectorCard, ManualClock],
) -> None:
    agent, sim, clock = node
    sim.set_presence(2, present=True)
    run(agent, clock, 35)
    assert {"code": "stuck_on", "active": True, "detail": "lane 2"} in events(
        agent, "fault"
    )
    assert "stuck_on_lane2" in agent.faults()
    sim.answering = False
    run(agent, clock, 3)
    assert "card_silent" in agent.faults()
    sim.answering = True
    sim.set_presence(2, present=False)
    run(agent, clock, 3)
    assert agent.faults() == set()
    assert {"code": "stuck_on", "active": False, "detail": "lane 2"} in events(
        agent, "fault"
    )
