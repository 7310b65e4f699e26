"""The handheld agent without a broker: NMEA in, fixes, faults, SOS in the outbox."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from edge.clock import ManualClock
from edge.node import build_agent
from edge.protocol import decode
from edge.protocol.messages import HandheldConfig
from firmware_sim.gnss import (
    RECEIVERS,
    GnssSimulator,
    Noise,
    open_pty,
    sentences,
    walking,
)
from firmware_sim.sospin import set_level
from handheld.agent import HandheldAgent
from handheld.settings import HandheldSettings

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
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
    for line in epoch(T0 + timedelta(seconds=3), hdop=9.0):
        agent.feed_line(line)
    assert agent.nmea_rejected == {"checksum": 1}  # "garbage" is line noise
    assert agent.fix_rejected["jump"] == 1
    assert agent.fix_rejected["hdop"] == 1
    assert agent.screen()["gnss_rejected"]["checksum"] == 1
    assert agent.screen()["gnss"]["junk"] == {"checksum": 1}


def test_a_bad_date_does_not_stop_the_loop(agent: HandheldAgent) -> None:
    rmc, gga = epoch(T0)
    bad = rmc.split(",")
    bad[9] = "001326"  # month 13
    body = ",".join(bad)[1:].split("*")[0]
    cs = 0
    for ch in body:
        cs ^= ord(ch)
    agent.feed_line(f"${body}*{cs:02X}")
    agent.feed_line(gga)
    agent.feed_bytes(b"\x00\xff$$$\xb5\x62" * 50)
    for line in epoch(T0 + timedelta(seconds=1)):
        agent.feed_line(line)
    assert agent.nmea_rejected["date"] == 1
    assert agent.last_fix is not None


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[HandheldAgent, int]]:
    """A handheld whose receiver is a pty; yields it and the pty's writing end."""
    pty = open_pty()
    settings = HandheldSettings(
        device_id="hh-2",
        kind="handheld",
        data_dir=tmp_path / "hh2",
        broker_port=1,
        gnss_url=pty.path,
        sos_button=f"file:{tmp_path / 'sos2.pin'}",
    )
    made = build_agent(HandheldAgent, settings, clock=ManualClock(T0))
    made.config = HandheldConfig()
    yield made, pty.master
    made._shutdown()
    made.outbox.close()
    made.trust.close()
    pty.close()


def _run_receiver(agent: HandheldAgent, master: int, lines: Iterable[bytes]) -> None:
    clock = agent.clock
    assert isinstance(clock, ManualClock)
    for data in lines:
        os.write(master, data)
        time.sleep(0.02)  # the pty hands the bytes over
        agent.step()
        clock.advance(1.0)
    agent.step()


def test_junk_and_no_fix_are_told_apart(wired: tuple[HandheldAgent, int]) -> None:
    agent, master = wired
    void = "$GPRMC,001902.00,V,,,,,,,020211,,,N*77\r\n"  # u-blox, no fix yet
    _run_receiver(agent, master, [void.encode()] * 15)
    faults = agent.faults()
    assert "gnss_no_fix" in faults
    assert "gnss_junk" not in faults
    assert agent.screen()["gnss"]["junk"] == {}
    # the same port at the wrong baud rate: bytes, but nothing readable
    _run_receiver(agent, master, [bytes(range(0x80, 0xC0))] * 15)
    assert {"gnss_junk", "gnss_no_fix"} <= agent.faults()


def test_a_receiver_with_a_fix_is_healthy(wired: tuple[HandheldAgent, int]) -> None:
    agent, master = wired
    lines = [
        "".join(x + "\r\n" for x in epoch(T0 + timedelta(seconds=i))).encode()
        for i in range(15)
    ]
    _run_receiver(agent, master, lines)
    assert agent.last_fix is not None
    assert not {"gnss_junk", "gnss_no_fix", "gnss_silent"} & agent.faults()


@pytest.mark.parametrize("receiver", RECEIVERS)
def test_the_receivers_the_county_buys_give_fixes(
    wired: tuple[HandheldAgent, int], receiver: str
) -> None:
    agent, master = wired
    clock = agent.clock
    assert isinstance(clock, ManualClock)
    sim = GnssSimulator(
        walking(),
        noise=Noise(poor_rate=0, dropout_rate=0, corrupt_rate=0),
        seed=3,
        now=clock.now,
        receiver=receiver,
    )
    _run_receiver(agent, master, (sim.epoch_bytes() for _ in range(12)))
    fix = agent.last_fix
    assert fix is not None
    assert fix.date_source == ("zda" if receiver == "gga-zda" else "rmc")
    assert agent.gnss.refused == {}
    assert agent.fix_rejected == {}
    assert not {"gnss_junk", "gnss_no_fix"} & agent.faults()
    if receiver == "ublox-dual":
        # NAV-PVT frames (the first epoch goes out before the port is open)
        assert agent.gnss.noise_bytes >= 10 * 100


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
    assert head.topic == "bl/v1/hh-1/sos"  # the SOS lane, not event/
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
