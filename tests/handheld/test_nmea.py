"""NMEA parsing on real-world sentence shapes: GPS, BeiDou, combined, errors."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.gnss import sentences
from handheld.nmea import FixAssembler, NmeaError, parse_sentence

# Shapes as u-blox, Quectel and Unicore receivers print them.
UBLOX_RMC = "$GNRMC,083559.00,A,2908.70000,N,11307.08000,E,0.004,77.52,091202,,,A*6E"
UBLOX_GGA = "$GNGGA,083559.00,2908.70000,N,11307.08000,E,1,12,0.92,52.3,M,-12.1,M,,*6F"
BEIDOU_RMC = "$BDRMC,092750.000,A,2924.3950,N,11307.8890,E,0.02,31.66,280511,,,A*46"
BEIDOU_GGA = "$BDGGA,092750.000,2924.3950,N,11307.8890,E,1,08,1.03,61.7,M,55.2,M,,*4F"


def _fix_checksum(line: str) -> str:
    body = line[1 : line.index("*")]
    cs = 0
    for ch in body:
        cs ^= ord(ch)
    return f"${body}*{cs:02X}"


def test_beidou_epoch_makes_a_fix() -> None:
    asm = FixAssembler()
    rmc = parse_sentence(_fix_checksum(BEIDOU_RMC))
    gga = parse_sentence(_fix_checksum(BEIDOU_GGA))
    assert rmc is not None
    assert gga is not None
    assert rmc.talker == "BD"
    assert asm.feed(rmc) is None
    fix = asm.feed(gga)
    assert fix is not None
    assert fix.time == datetime(2011, 5, 28, 9, 27, 50, tzinfo=UTC)
    assert fix.lat == pytest.approx(29.406583, abs=1e-5)
    assert fix.lon == pytest.approx(113.131483, abs=1e-5)
    assert fix.sats == 8
    assert fix.hdop == pytest.approx(1.03)
    assert fix.talker == "BD"


def test_gga_before_rmc_and_combined_talker() -> None:
    asm = FixAssembler()
    gga = parse_sentence(_fix_checksum(UBLOX_GGA))
    rmc = parse_sentence(_fix_checksum(UBLOX_RMC))
    assert gga is not None
    assert rmc is not None
    assert asm.feed(gga) is None  # waits for the epoch's RMC (the date)
    fix = asm.feed(rmc)
    assert fix is not None
    assert fix.talker == "GN"
    assert fix.speed_mps == pytest.approx(0.004 * 0.514444)


@pytest.mark.parametrize("talker", ["GP", "GB", "GN", "BD"])
def test_every_talker_round_trips_from_the_simulator(talker: str) -> None:
    at = datetime(2026, 11, 29, 8, 0, 1, tzinfo=UTC)
    lines = sentences(
        at=at,
        lat=29.145,
        lon=113.118,
        speed_mps=1.4,
        course=90,
        hdop=0.9,
        sats=14,
        talker=talker,
    )
    asm = FixAssembler()
    fixes = [asm.feed(s) for s in map(parse_sentence, lines) if s is not None]
    fix = fixes[-1]
    assert fix is not None
    assert fix.time == at
    assert fix.lat == pytest.approx(29.145, abs=1e-6)
    assert fix.lon == pytest.approx(113.118, abs=1e-6)
    assert fix.speed_mps == pytest.approx(1.4, abs=0.01)


def test_checksum_error_is_rejected_with_its_reason() -> None:
    bad = _fix_checksum(BEIDOU_GGA)[:-2] + "00"
    with pytest.raises(NmeaError) as caught:
        parse_sentence(bad)
    assert caught.value.reason == "checksum"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("hello", "parse"),
        ("$GPGGA,garbage", "checksum"),  # no checksum at all
        (
            _fix_checksum(
                "$XXGGA,083559.00,2908.7,N,11307.08,E,1,12,0.9,52,M,-12,M,,*00"
            ),
            "talker",
        ),
    ],
)
def test_junk_lines_are_named(line: str, reason: str) -> None:
    with pytest.raises(NmeaError) as caught:
        parse_sentence(line)
    assert caught.value.reason == reason


def test_void_rmc_and_no_fix_give_nothing() -> None:
    void = _fix_checksum(BEIDOU_RMC.replace(",A,2924", ",V,2924"))
    nofix = _fix_checksum(BEIDOU_GGA.replace(",E,1,08", ",E,0,00"))
    asm = FixAssembler()
    for line in (void, _fix_checksum(BEIDOU_GGA)):
        sentence = parse_sentence(line)
        assert sentence is not None
        assert asm.feed(sentence) is None
    asm = FixAssembler()
    for line in (_fix_checksum(BEIDOU_RMC), nofix):
        sentence = parse_sentence(line)
        assert sentence is not None
        assert asm.feed(sentence) is None


def test_sentences_a_fix_does_not_need_are_skipped() -> None:
    assert parse_sentence(_fix_checksum("$GBGSV,1,1,00*00")) is None
    assert (
        parse_sentence(_fix_checksum("$GNGSA,A,3,,,,,,,,,,,,,1.2,0.9,0.8*00")) is None
    )


@given(st.text(max_size=120))
def test_any_text_parses_or_raises_nmea_error(text: str) -> None:
    with contextlib.suppress(NmeaError):
        parse_sentence(text)
