"""The handheld agent without a broker: NMEA in, fixes, faults, SOS in the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from edge.clock import ManualClock
from edge.node import build_agent
from edge.protocol import decode
from edge.protocol.messages import HandheldConfig
from firmware_sim.gnss import sentences
from firmware_sim.sospin import set_level
from handheld.agent import HandheldAgent
from handheld.settings import HandheldSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[HandheldAgent]:
    settings = HandheldSettings(
        device_id="hh-1",
        kind="handheld",
        data_dir=tmp_path / "hh",
        broker_port=1,  # never connected in these tests
        gnss_url=str(tmp_path / "no-such-port"),
        sos_button=f"file:{tmp_path / 'sos.pin'}",
    )
    clock = ManualClock(T0)
    made = build_agent(HandheldAgent, settings, clock=clock)
    made.config = HandheldConfig(sos_hold_s=2.0, sos_cancel_s=5.0)
    yield made
    made.outbox.close()
    made.trust.close()


def epoch(at: datetime, lat: float = 29.145, hdop: float = 0.9) -> list[str]:
    return sentences(
        at=at,
        lat=lat,
        lon=113.118,
        speed_mps=0.0,
        course=0.0,
        hdop=hdop,
        sats=12,
        talker="BD",
    )


def test_bad_lines_are_counted_and_good_fixes_kept(agent: HandheldAgent) -> None:
    clock = agent.clock
    assert isinstance(clock, ManualClock)
    rmc, gga = epoch(T0)
    agent.feed_line(rmc)
    agent.feed_line(gga[:-2] + ("00" if gga[-2:] != "00" else "01"))  # bad checksum
    agent.feed_line("garbage")
    agent.feed_line("")
    assert agent.last_fix is None
    for line in epoch(T0 + timedelta(seconds=1)):
        agent.feed_line(line)
    assert agent.last_fix is not None
    clock.advance(2)
    for line in epoch(T0 + timedelta(seconds=2), lat=29.2):  # 6 km in a second
        agent.feed_line(line)
    for line in epoch(T0 + timedelta(seconds=2), hdop=9.0):
        agent.feed_line(line)
    assert agent.nmea_rejected == {"checksum": 1, "parse": 1}
    assert agent.fix_rejected["jump"] == 1
    assert agent.fix_rejected["hdop"] == 1
    assert agent.screen()["gnss_rejected"]["checksum"] == 1


def test_missing_receiver_is_a_fault_not_a_crash(agent: HandheldAgent) -> None:
    agent.step()
    assert {"gnss_port", "gnss_no_fix"} <= agent.faults()
    assert agent.health().status == "fault"


def test_long_press_puts_sos_at_the_head_of_the_outbox(
    agent: HandheldAgent, tmp_path: Path
) -> None:
    clock = agent.clock
    assert isinstance(clock, ManualClock)
    for line in epoch(T0):
        agent.feed_line(line)
    agent.step()  # reports the first fix
    pin = tmp_path / "sos.pin"
    set_level(pin, pressed=True)
    agent.step()
    clock.advance(1.0)
    agent.step()
    assert agent.sos is None  # not yet: a long press is 2 s
    clock.advance(1.0)
    agent.step()
    assert agent.sos is not None
    assert agent.sos["phase"] == "raised"
    assert agent.update_deferral() == "an SOS is in progress"  # no OTA now
    head = agent.outbox.peek(1)[0]  # ahead of the position queued before it
    assert head.topic == "bl/v1/hh-1/event/sos"
    body = decode(head.payload).body
    assert body["sos_id"] == agent.sos["sos_id"]
    assert body["lat"] == pytest.approx(29.145, abs=1e-6)
    set_level(pin, pressed=False)
    agent.step()
    clock.advance(3.0)
    set_level(pin, pressed=True)  # a press within 5 s cancels
    agent.step()
    assert agent.sos["phase"] == "cancelled"
    assert agent.screen()["sos"]["text"] == "求救已取消"
