"""NMEA reading on golden sentences and on what receivers really send.

Golden sentences are quoted with the checksums printed in their sources:
Dale DePriest's NMEA reference (gpsinformation.org, the examples most NMEA
documentation quotes), the u-blox M8 Receiver Description (UBX-13003221)
and the Quectel L80 GPS Protocol Specification. Binary frames are built
from their documented byte layout (UBX: u-blox's header B5 62, class, id,
little-endian length, Fletcher-8; RTCM 3: D3, 10-bit length, CRC-24Q), not
by any code of ours.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime
from datetime import time as dtime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.gnss import sentences
from handheld.epoch import Fix, FixAssembler
from handheld.nmea import (
    Ignored,
    NmeaError,
    Sentence,
    SentenceFramer,
    checksum,
    parse_sentence,
)
from handheld.reader import GnssReader, Refusal

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

# Dale DePriest's NMEA reference, the classic examples
DEPRIEST_GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
DEPRIEST_RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
DEPRIEST_GLL = "$GPGLL,4916.45,N,12311.12,W,225444,A,*1D"
DEPRIEST_RMC_2 = "$GPRMC,225446,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E*68"
DEPRIEST_VTG = "$GPVTG,054.7,T,034.4,M,005.5,N,010.2,K*48"
DEPRIEST_ZDA = "$GPZDA,201530.00,04,07,2002,00,00*60"
# u-blox M8 Receiver Description, NMEA protocol chapter
UBLOX_GGA = "$GPGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,*5B"
UBLOX_RMC = "$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57"
UBLOX_GLL = "$GPGLL,4717.11364,N,00833.91565,E,092321.00,A,A*60"
UBLOX_VTG = "$GPVTG,77.52,T,,M,0.004,N,0.008,K,A*06"
UBLOX_ZDA = "$GPZDA,082710.00,16,09,2002,00,00*64"
UBLOX_GSV = "$GPGSV,3,1,10,23,38,230,44,29,71,156,47,07,29,116,41,08,09,081,36*7F"
UBLOX_GSA = "$GPGSA,A,3,23,29,07,08,09,18,26,28,,,,,1.94,1.18,1.54*0D"
UBLOX_TXT = "$GPTXT,01,01,02,u-blox ag - www.u-blox.com*50"
UBLOX_PUBX = (
    "$PUBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,2.0,0.007,"
    "77.52,0.007,,0.92,1.19,0.77,9,0,0*5F"
)
# Quectel L80 GPS Protocol Specification
QUECTEL_RMC = "$GPRMC,013732.000,A,3150.7238,N,11711.7278,E,0.00,0.00,220413,,,A*68"
QUECTEL_GGA = (
    "$GPGGA,015540.000,3150.68378,N,11711.93139,E,1,17,0.6,0051.6,M,0.0,M,,*58"
)
QUECTEL_PMTK = "$PMTK605*31"

GOLDEN = [
    DEPRIEST_GGA,
    DEPRIEST_RMC,
    DEPRIEST_GLL,
    DEPRIEST_RMC_2,
    DEPRIEST_VTG,
    DEPRIEST_ZDA,
    UBLOX_GGA,
    UBLOX_RMC,
    UBLOX_GLL,
    UBLOX_VTG,
    UBLOX_ZDA,
    UBLOX_GSV,
    UBLOX_GSA,
    UBLOX_TXT,
    UBLOX_PUBX,
    QUECTEL_RMC,
    QUECTEL_GGA,
    QUECTEL_PMTK,
]


def with_checksum(body: str) -> str:
    """A sentence of ours (not golden): its checksum computed here."""
    return f"${body}*{checksum(body):02X}"


def ubx(cls: int, msg_id: int, payload: bytes) -> bytes:
    """A UBX frame by u-blox's layout: B5 62, class, id, length LE, CK_A, CK_B."""
    body = struct.pack("<BBH", cls, msg_id, len(payload)) + payload
    ck_a = ck_b = 0
    for byte in body:
        ck_a = (ck_a + byte) & 0xFF
        ck_b = (ck_b + ck_a) & 0xFF
    return b"\xb5\x62" + body + bytes([ck_a, ck_b])


def rtcm3(payload: bytes) -> bytes:
    """An RTCM 3 frame: D3, 6 reserved bits, 10-bit length, payload, CRC-24Q."""
    frame = bytes([0xD3, (len(payload) >> 8) & 0x03, len(payload) & 0xFF]) + payload
    crc = 0
    for byte in frame:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return frame + (crc & 0xFFFFFF).to_bytes(3, "big")


NAV_PVT = ubx(0x01, 0x07, bytes(92))  # UBX-NAV-PVT: 92-byte payload
MSG_1005 = rtcm3(bytes.fromhex("3ed00003") + bytes(15))  # type 1005, 19 bytes


def read(data: bytes, *, chunk: int = 0) -> tuple[GnssReader, list[Fix]]:
    reader = GnssReader()
    out: list[Fix | Refusal] = []
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        out += reader.feed(data[i : i + step], now=NOW)
    out += reader.finish(now=NOW)
    return reader, [o for o in out if isinstance(o, Fix)]


# -- golden sentences -----------------------------------------------------------
@pytest.mark.parametrize("line", GOLDEN)
def test_golden_checksums_are_accepted(line: str) -> None:
    body, given_hex = line[1:].split("*")
    assert checksum(body) == int(given_hex, 16)
    parse_sentence(line)  # does not raise


@pytest.mark.parametrize("line", GOLDEN[:6])
def test_one_changed_character_fails_the_checksum(line: str) -> None:
    broken = line.replace(",", ";", 1)
    with pytest.raises(NmeaError) as caught:
        parse_sentence(broken)
    assert caught.value.reason == "checksum"


def test_depriest_gga_fields() -> None:
    gga = parse_sentence(DEPRIEST_GGA)
    assert isinstance(gga, Sentence)
    assert gga.time == dtime(12, 35, 19)
    assert gga.lat == pytest.approx(48 + 7.038 / 60)
    assert gga.lon == pytest.approx(11 + 31.0 / 60)
    assert (gga.quality, gga.sats, gga.hdop, gga.altitude) == (1, 8, 0.9, 545.4)
    assert gga.fix


def test_depriest_rmc_fields() -> None:
    rmc = parse_sentence(DEPRIEST_RMC)
    assert isinstance(rmc, Sentence)
    assert rmc.day == date(1994, 3, 23)
    assert rmc.speed_mps == pytest.approx(22.4 * 0.514444)
    assert rmc.course == pytest.approx(84.4)
    west = parse_sentence(DEPRIEST_RMC_2)
    assert isinstance(west, Sentence)
    assert west.lon == pytest.approx(-(123 + 11.12 / 60))


def test_vtg_and_zda_fields() -> None:
    vtg = parse_sentence(DEPRIEST_VTG)
    assert isinstance(vtg, Sentence)
    assert vtg.course == pytest.approx(54.7)
    assert vtg.speed_mps == pytest.approx(5.5 * 0.514444)
    zda = parse_sentence(UBLOX_ZDA)
    assert isinstance(zda, Sentence)
    assert zda.day == date(2002, 9, 16)
    assert zda.time == dtime(8, 27, 10)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (UBLOX_GSV, "other"),
        (UBLOX_GSA, "other"),
        (UBLOX_TXT, "other"),
        (UBLOX_PUBX, "proprietary"),
        (QUECTEL_PMTK, "proprietary"),
        ("$POLYN,TIME,RESTART_OCCURRED", "proprietary"),  # MTK: no checksum at all
        (with_checksum("GYOACC,0.12"), "other"),
    ],
)
def test_non_position_and_proprietary_sentences_are_ignored(
    line: str, why: str
) -> None:
    got = parse_sentence(line)
    assert isinstance(got, Ignored)
    assert got.why == why


def test_a_healthy_receivers_other_sentences_are_not_errors() -> None:
    lines = [UBLOX_TXT, UBLOX_PUBX, UBLOX_GSV, UBLOX_GSA, QUECTEL_PMTK, QUECTEL_GGA]
    stream = "".join(line + "\r\n" for line in lines)
    reader, _ = read(stream.encode())
    assert reader.refused == {}
    assert reader.sentences == {"other": 3, "proprietary": 2, "GGA": 1}


# -- fixes from what receivers send ------------------------------------------------
def test_gga_and_rmc_of_one_epoch_make_one_fix() -> None:
    gga = with_checksum(
        "GNGGA,083559.00,2908.70000,N,11307.08000,E,1,12,0.92,52.3,M,-12.1,M,,"
    )
    rmc = with_checksum(
        "GNRMC,083559.00,A,2908.70000,N,11307.08000,E,0.004,77.52,091202,,,A"
    )
    _, fixes = read(f"{gga}\r\n{rmc}\r\n".encode())
    assert len(fixes) == 1
    fix = fixes[0]
    assert fix.time == datetime(2002, 12, 9, 8, 35, 59, tzinfo=UTC)
    assert fix.date_source == "rmc"
    assert fix.sats == 12
    assert fix.hdop == pytest.approx(0.92)
    assert fix.speed_mps == pytest.approx(0.004 * 0.514444)
    assert fix.sentences == ("GGA", "RMC")


def test_rmc_alone_makes_a_fix() -> None:
    _, fixes = read(f"{QUECTEL_RMC}\r\n".encode())
    assert [f.time for f in fixes] == [datetime(2013, 4, 22, 1, 37, 32, tzinfo=UTC)]
    assert fixes[0].lat == pytest.approx(31 + 50.7238 / 60)
    assert fixes[0].date_source == "rmc"
    assert fixes[0].hdop is None


def test_gga_alone_takes_the_date_from_the_clock_and_says_so() -> None:
    _, fixes = read(f"{QUECTEL_GGA}\r\n".encode())
    assert len(fixes) == 1
    assert fixes[0].date_source == "clock"
    assert fixes[0].time == datetime(2026, 12, 5, 1, 55, 40, tzinfo=UTC)
    assert fixes[0].sats == 17


def test_gga_alone_near_midnight_takes_the_clocks_nearest_day() -> None:
    gga = with_checksum("GPGGA,235959.00,2908.7,N,11307.08,E,1,08,1.0,50,M,0,M,,")
    asm = FixAssembler()
    sentence = parse_sentence(gga)
    assert isinstance(sentence, Sentence)
    asm.feed(sentence, now=datetime(2026, 12, 6, 0, 0, 2, tzinfo=UTC))
    (fix,) = asm.finish(now=datetime(2026, 12, 6, 0, 0, 2, tzinfo=UTC))
    assert isinstance(fix, Fix)
    assert fix.time == datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC)


def test_gga_after_an_rmc_keeps_its_date_across_midnight() -> None:
    rmc = with_checksum("GPRMC,235959.00,A,2908.7,N,11307.08,E,0.0,0.0,311226,,,A")
    gga = with_checksum("GPGGA,000000.00,2908.7,N,11307.08,E,1,08,1.0,50,M,0,M,,")
    gga2 = with_checksum("GPGGA,000001.00,2908.7,N,11307.08,E,1,08,1.0,50,M,0,M,,")
    _, fixes = read(f"{rmc}\r\n{gga}\r\n{gga2}\r\n".encode())
    assert [f.time.isoformat() for f in fixes] == [
        "2026-12-31T23:59:59+00:00",
        "2027-01-01T00:00:00+00:00",
        "2027-01-01T00:00:01+00:00",
    ]
    assert {f.date_source for f in fixes} == {"rmc"}


def test_a_receiver_stepping_back_a_little_keeps_the_day() -> None:
    # Telit HE910 in gpsd's capture: 10:51:53.71, then 10:51:53.408
    zda = with_checksum("GPZDA,105153.71,12,03,2019,00,00")
    gga = "GPGGA,{},5050.4122,N,00420.8266,E,1,04,2.25,109.44,M,,M,,"
    stream = "".join(
        with_checksum(line) + "\r\n"
        for line in (gga.format("105153.71"), zda[1:-3], gga.format("105153.408"))
    )
    _, fixes = read(stream.encode())
    assert [f.time.date() for f in fixes] == [date(2019, 3, 12)] * 2


@pytest.mark.parametrize("year", ["9999", "0001", "1970"])
def test_impossible_zda_years_are_bad_dates(year: str) -> None:
    zda = with_checksum(f"GPZDA,092725.00,31,12,{year},00,00")
    reader, fixes = read(f"{UBLOX_GGA}\r\n{zda}\r\n".encode())
    assert reader.refused == {"date": 1}
    assert [f.date_source for f in fixes] == ["clock"]


def test_gga_with_zda_takes_the_zda_date() -> None:
    zda = with_checksum("GPZDA,092725.00,16,09,2002,00,00")
    _, fixes = read(f"{UBLOX_GGA}\r\n{zda}\r\n".encode())
    assert len(fixes) == 1
    assert fixes[0].date_source == "zda"
    assert fixes[0].time == datetime(2002, 9, 16, 9, 27, 25, tzinfo=UTC)


def test_gns_and_gll_alone_make_fixes() -> None:
    gns = with_checksum(
        "GNGNS,014035.00,4332.69262,S,17235.48549,E,RR,13,0.9,25.63,11.24,,"
    )
    _, fixes = read(f"{gns}\r\n".encode())
    assert len(fixes) == 1
    assert fixes[0].lat == pytest.approx(-(43 + 32.69262 / 60))
    assert fixes[0].quality == 4  # R: RTK fixed
    _, fixes = read(f"{UBLOX_GLL}\r\n".encode())
    assert len(fixes) == 1
    assert fixes[0].time.time() == dtime(9, 23, 21)


@pytest.mark.parametrize(
    "talker", ["GP", "GL", "GA", "GB", "BD", "GQ", "GI", "GN", "IN"]
)
def test_every_standard_talker_gives_a_fix(talker: str) -> None:
    rmc = with_checksum(
        f"{talker}RMC,083559.00,A,2908.70000,N,11307.08000,E,0.0,0.0,091202,,,A"
    )
    _, fixes = read(f"{rmc}\r\n".encode())
    assert [f.talker for f in fixes] == [talker]


@pytest.mark.parametrize("talker", ["GP", "GB", "GN", "BD"])
def test_the_simulators_epochs_round_trip(talker: str) -> None:
    at = datetime(2026, 11, 29, 8, 0, 1, tzinfo=UTC)
    lines = sentences(
        at=at, lat=29.145, lon=113.118, speed_mps=1.4, course=90, hdop=0.9,
        sats=14, talker=talker,
    )  # fmt: skip
    _, fixes = read("".join(line + "\r\n" for line in lines).encode())
    (fix,) = fixes
    assert fix.time == at
    assert fix.lat == pytest.approx(29.145, abs=1e-6)
    assert fix.speed_mps == pytest.approx(1.4, abs=0.01)


def test_void_rmc_and_quality_zero_are_no_fix_not_junk() -> None:
    void = with_checksum("GPRMC,001902.00,V,,,,,,,020211,,,N")
    nofix = with_checksum("GPGGA,001903.00,,,,,0,00,99.99,,,,,,")
    cold = with_checksum("GPRMC,000452.981,V,36000.0000,N,72000.0000,E,0.0,,190120,,")
    reader, fixes = read(f"{void}\r\n{nofix}\r\n{cold}\r\n".encode())
    assert fixes == []
    assert reader.refused == {"no_fix": 3}
    assert reader.junk == 0


def test_one_sentence_that_claims_a_fix_is_enough() -> None:
    # GGA quality 0 with the last position, RMC valid: the RMC's position
    gga = with_checksum("GPGGA,083559.00,2908.7,N,11307.08,E,0,00,,50,M,0,M,,")
    rmc = with_checksum("GPRMC,083559.00,A,2908.9,N,11307.08,E,0.0,0.0,091202,,,A")
    _, fixes = read(f"{gga}\r\n{rmc}\r\n".encode())
    (fix,) = fixes
    assert fix.lat == pytest.approx(29 + 8.9 / 60)
    assert fix.sentences == ("GGA", "RMC")


# -- refusals are counted, never raised ------------------------------------------------
@pytest.mark.parametrize("day", ["000000", "011326", "310226"])
def test_bad_rmc_dates_are_counted_not_raised(day: str) -> None:
    rmc = with_checksum(f"GPRMC,083559.00,A,2908.7,N,11307.08,E,0.0,0.0,{day},,,A")
    gga = with_checksum("GPGGA,083559.00,2908.7,N,11307.08,E,1,08,1.0,50,M,0,M,,")
    reader, fixes = read(f"{rmc}\r\n".encode())
    assert fixes == []
    assert reader.refused == {"date": 1}
    reader, fixes = read(f"{rmc}\r\n{gga}\r\n".encode())  # the GGA still counts
    assert [f.date_source for f in fixes] == ["clock"]


def test_junk_is_named() -> None:
    good = with_checksum("GPGGA,083559.00,2908.7,N,11307.08,E,1,08,1.0,50,M,0,M,,")
    stream = (
        good[:-2] + "00\r\n"  # wrong checksum
        "$GPGGA,garbage\r\n"  # no checksum
        + with_checksum("GPGGA,25xx59.00,2908.7,N,11307.08,E,1,08,1.0,50,M,0,M,,")
        + "\r\n"
        + with_checksum("GPGGA,083600.00,9908.7,N,11307.08,E,1,08,1.0,50,M,0,M,,")
        + "\r\n$GPGGA,0836\xb5\x62\r\n"  # binary inside a sentence
    )
    reader, fixes = read(stream.encode("latin-1"))
    assert fixes == []
    assert reader.refused == {"checksum": 2, "malformed": 3}


# -- the byte stream -----------------------------------------------------------------
def test_sentences_after_binary_and_several_on_one_line() -> None:
    gga = with_checksum(
        "GNGGA,083559.00,2908.70000,N,11307.08000,E,1,12,0.92,52.3,M,-12.1,M,,"
    )
    rmc = with_checksum(
        "GNRMC,083559.00,A,2908.70000,N,11307.08000,E,0.004,77.52,091202,,,A"
    )
    stream = NAV_PVT + gga.encode() + MSG_1005 + rmc.encode() + b"\r\n" + NAV_PVT
    reader, fixes = read(stream)
    assert len(fixes) == 1
    assert fixes[0].sentences == ("GGA", "RMC")
    assert reader.refused == {}
    assert reader.noise_bytes == 2 * len(NAV_PVT) + len(MSG_1005) + 2  # and CR LF


def test_a_dollar_inside_binary_does_not_hide_the_next_sentence() -> None:
    tricky = ubx(0x01, 0x07, b"$GPGGA" + bytes(86))  # the payload happens to hold "$"
    _, fixes = read(tricky + QUECTEL_RMC.encode() + b"\r\n")
    assert len(fixes) == 1


def test_teseo_double_dollar() -> None:
    stream = f"${QUECTEL_GGA}\r\n${QUECTEL_RMC}\r\n"  # "$$GPGGA,..."
    assert stream.startswith("$$GPGGA")
    reader, fixes = read(stream.encode())
    assert len(fixes) == 2  # two epochs (the manual's examples differ in time)
    assert reader.refused == {}
    assert reader.noise_bytes == 2 + 4  # the extra "$"s and the line ends


def test_a_truncated_sentence_does_not_eat_the_next() -> None:
    reader, fixes = read(b"$GPGGA,030130" + QUECTEL_RMC.encode() + b"\r\n")
    assert len(fixes) == 1
    assert reader.refused == {"malformed": 1}


@pytest.mark.parametrize("cut", range(1, len(QUECTEL_RMC) + 2))
def test_a_sentence_split_across_reads(cut: int) -> None:
    data = (QUECTEL_RMC + "\r\n").encode()
    framer = SentenceFramer()
    framed = framer.feed(data[:cut]) + framer.feed(data[cut:]) + framer.finish()
    assert [f.text for f in framed] == [QUECTEL_RMC]


def test_an_endless_line_stays_bounded() -> None:
    framer = SentenceFramer()
    out = framer.feed(b"$GPGGA," + b"1" * 10_000)
    assert [f.reason for f in out] == ["malformed"]
    assert len(framer._buf) <= 200


# -- properties ----------------------------------------------------------------------
PIECES = st.sampled_from(
    [
        *(line.encode() + b"\r\n" for line in GOLDEN),
        NAV_PVT,
        MSG_1005,
        b"$$",
        b"\r\n",
        b"$GPGGA,12",
        b"\xb5\x62\x01",
    ]
)
STREAMS = st.lists(st.one_of(PIECES, st.binary(max_size=40)), max_size=30).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=STREAMS, chunk=st.integers(min_value=1, max_value=64))
def test_any_bytes_never_raise_and_chunking_changes_nothing(
    data: bytes, chunk: int
) -> None:
    whole, fixes = read(data)
    chunked, same = read(data, chunk=chunk)
    assert same == fixes
    assert chunked.refused == whole.refused
    assert chunked.sentences == whole.sentences
    assert chunked.noise_bytes == whole.noise_bytes


FIELD = st.one_of(
    st.sampled_from(["", "A", "V", "N", "S", "E", "W", "T", "K", "M", "RR", "AN"]),
    st.from_regex(r"[0-9]{1,10}(\.[0-9]{0,9})?", fullmatch=True),
    st.text(alphabet="0123456789.-+ ENSW", max_size=12),
)
CHECKSUMMED = st.builds(
    lambda talker, kind, fields: with_checksum(f"{talker}{kind},{','.join(fields)}"),
    st.sampled_from(["GP", "GN", "BD", "IN", "EC"]),
    st.sampled_from(["GGA", "RMC", "GNS", "GLL", "ZDA", "VTG"]),
    st.lists(FIELD, max_size=16),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(CHECKSUMMED, max_size=12))
def test_well_checksummed_nonsense_never_raises(lines: list[str]) -> None:
    reader, fixes = read("".join(line + "\r\n" for line in lines).encode())
    assert len(fixes) <= len(lines)
    for fix in fixes:
        assert -90 <= fix.lat <= 90
        assert fix.time.tzinfo is UTC
    assert reader.good + reader.junk == len(lines)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_parses_or_raises_nmea_error(text: str) -> None:
    reason = ""
    try:
        parse_sentence(text)
    except NmeaError as exc:
        reason = exc.reason
    assert reason in {"", "checksum", "malformed", "date"}
