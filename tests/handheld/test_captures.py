"""Real receiver captures (gpsd's regression logs) and ``baling gnss check``.

A fix for every epoch that has one, through the reader and through the
command, on every capture; the command on a live port and on bad sources.

The expected fixes come from a third-party parser, not from ours: every
GGA, RMC, GNS and GLL sentence found in the raw bytes whose checksum
pynmea2 accepts and which claims a position (GGA quality > 0, RMC/GLL
status A, a GNS mode other than N) marks an epoch with a fix; the reader
must report a fix within a second of it, at pynmea2's position. The
captures live in ``../shared/data/nmea-dev`` beside the repository and are
never copied into it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pynmea2
import pytest

from baling.cli import main
from handheld.check import CommentFilter
from handheld.epoch import Fix
from handheld.reader import GnssReader

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import time as dtime

CAPTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nmea-dev"
LOGS = sorted(CAPTURES.glob("*.log")) if CAPTURES.is_dir() else []
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
POSITION = re.compile(
    rb"\$([A-Z]{2})(GGA|RMC|GNS|GLL),([\x20-\x29\x2b-\x7e]*)\*([0-9A-Fa-f]{2})"
)
# Quectel L80 GPS Protocol Specification's examples, checksums as printed there
QUECTEL_RMC = "$GPRMC,013732.000,A,3150.7238,N,11711.7278,E,0.00,0.00,220413,,,A*68"
QUECTEL_GGA = (
    "$GPGGA,015540.000,3150.68378,N,11711.93139,E,1,17,0.6,0051.6,M,0.0,M,,*58"
)
QUECTEL_PMTK = "$PMTK605*31"


def nav_pvt() -> bytes:
    """UBX-NAV-PVT by u-blox's layout: B5 62 01 07, length 92 LE, Fletcher-8."""
    body = struct.pack("<BBH", 0x01, 0x07, 92) + bytes(92)
    ck_a = ck_b = 0
    for byte in body:
        ck_a = (ck_a + byte) & 0xFF
        ck_b = (ck_b + ck_a) & 0xFF
    return b"\xb5\x62" + body + bytes([ck_a, ck_b])


NAV_PVT = nav_pvt()
needs_captures = pytest.mark.skipif(
    not LOGS, reason=f"no receiver captures at {CAPTURES} (shared data absent)"
)


@dataclass(frozen=True, slots=True)
class Expected:
    """One position sentence that claims a fix, as pynmea2 reads it."""

    seconds: float  # of the day
    lat: float
    lon: float
    text: str


def _seconds(at: dtime) -> float:
    return at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6


def _claims_fix(msg: pynmea2.NMEASentence) -> bool:
    data = msg.data
    kind = msg.sentence_type
    if kind == "GGA":
        return bool(data[5]) and data[5] != "0"
    if kind == "RMC":
        return data[1] == "A" and (len(data) < 12 or data[11][:1] != "N")
    if kind == "GLL":
        return (
            len(data) > 5 and data[5] == "A" and (len(data) < 7 or data[6][:1] != "N")
        )
    return bool(data[5].replace("N", ""))  # GNS: a mode letter per constellation


def expected_fixes(raw: bytes) -> list[Expected]:
    """Every position sentence in ``raw`` that pynmea2 accepts and that claims a fix."""
    out: list[Expected] = []
    for m in POSITION.finditer(raw):
        text = m.group(0).decode("ascii")
        try:
            msg = pynmea2.parse(text, check=True)
            if not _claims_fix(msg) or not msg.timestamp:
                continue
            lat, lon = float(msg.latitude), float(msg.longitude)
        except (pynmea2.ParseError, AttributeError, IndexError, TypeError, ValueError):
            continue
        if not msg.lat or not msg.lon:
            continue
        out.append(Expected(_seconds(msg.timestamp), lat, lon, text))
    return out


def read_all(raw: bytes, chunk: int = 0) -> tuple[GnssReader, list[Fix]]:
    reader = GnssReader()
    outcomes = []
    step = chunk or len(raw) or 1
    for i in range(0, len(raw), step):
        outcomes += reader.feed(raw[i : i + step], now=NOW)
    outcomes += reader.finish(now=NOW)
    return reader, [o for o in outcomes if isinstance(o, Fix)]


def assert_covers(fixes: list[Fix], expected: list[Expected], name: str) -> None:
    by_second: dict[int, list[Fix]] = {}
    for fix in fixes:
        by_second.setdefault(int(_seconds(fix.time.timetz())), []).append(fix)
    missing = []
    for want in expected:
        near = [
            f
            for s in (int(want.seconds) - 1, int(want.seconds), int(want.seconds) + 1)
            for f in by_second.get(s % 86_400, [])
            if abs(_seconds(f.time.timetz()) - want.seconds) < 1.0
        ]
        if not any(
            abs(f.lat - want.lat) < 1e-4 and abs(f.lon - want.lon) < 1e-4 for f in near
        ):
            missing.append(want.text)
    assert not missing, (
        f"{name}: {len(missing)} epochs without a fix, e.g. {missing[:3]}"
    )


@needs_captures
@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_every_epoch_with_a_fix_gives_one(path: Path) -> None:
    raw = path.read_bytes()
    expected = expected_fixes(raw)
    reader, fixes = read_all(raw)
    assert_covers(fixes, expected, path.name)
    # one fix per epoch, not one per sentence
    assert len(fixes) <= len({round(e.seconds, 3) for e in expected})
    assert reader.bytes_read == len(raw)


@needs_captures
@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_chunked_reading_gives_the_same_fixes(path: Path) -> None:
    raw = path.read_bytes()
    whole, fixes = read_all(raw)
    chunked, same = read_all(raw, chunk=7)
    assert same == fixes
    assert chunked.refused == whole.refused
    assert chunked.sentences == whole.sentences


def test_captures_folder_is_found_where_ci_puts_it() -> None:
    if not LOGS:
        pytest.skip(f"no receiver captures at {CAPTURES} (shared data absent)")
    assert len(LOGS) >= 90


CLI_LOGS = [
    name
    for name in (
        "ublox-zed-f9p_hpg1.11.log",  # UBX binary and NMEA on one line
        "st-teseo-liv4f.log",  # "$$" prefixes
        "meinberg-gps164.log",  # RMC only
        "mr-350p.log",  # GGA and ZDA, no RMC
        "ericsson-gru04-02-70sec.log",  # GNS and GLL only
        "eXplorist110.log",  # no fix at all
        "sirf2.log",  # binary only
        "quectel-l76k-nmea.log",
    )
    if (CAPTURES / name).is_file()
]


@needs_captures
@pytest.mark.parametrize("name", CLI_LOGS)
def test_gnss_check_reports_the_fixes_of_a_capture(name: str) -> None:
    path = CAPTURES / name
    expected = expected_fixes(path.read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "baling.cli", "gnss", "check", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in {0, 1}, done.stderr
    assert "Traceback" not in done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    *fix_lines, last = lines
    summary = last["summary"]
    fixes = [
        Fix(
            time=datetime.fromisoformat(f["time"]),
            lat=f["lat"],
            lon=f["lon"],
            quality=f["quality"],
            sats=f["sats"],
            hdop=f["hdop"],
            speed_mps=f["speed_mps"],
            course=f["course"],
            talker=f["talker"],
            date_source=f["date_source"],
        )
        for f in fix_lines
    ]
    assert_covers(fixes, expected, name)
    assert summary["fixes"] == len(fixes)
    assert done.returncode == (0 if summary["verdict"] == "ok" else 1)
    assert (summary["fixes"] > 0) == bool(expected)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def fixes_of(lines: list[dict[str, object]]) -> list[Fix]:
    return [
        Fix(
            time=datetime.fromisoformat(str(f["time"])),
            lat=float(str(f["lat"])),
            lon=float(str(f["lon"])),
            quality=int(str(f["quality"])),
            sats=None,
            hdop=None,
            speed_mps=0.0,
            course=None,
            talker=str(f["talker"]),
            date_source=str(f["date_source"]),
        )
        for f in lines
    ]


@needs_captures
@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_check_reports_every_epoch_of_every_capture(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["gnss", "check", str(path), "--json"], capsys)
    assert code in {0, 1}, err
    *fix_lines, last = [json.loads(line) for line in out.splitlines()]
    summary = last["summary"]
    assert_covers(fixes_of(fix_lines), expected_fixes(path.read_bytes()), path.name)
    assert summary["fixes"] == len(fix_lines)
    assert summary["bytes"] > 0
    assert code == (0 if summary["verdict"] == "ok" else 1)


@needs_captures
def test_check_tells_a_technician_what_is_wrong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["gnss", "check", str(CAPTURES / "sirf2.log")], capsys)
    assert code == 1
    assert "没有 NMEA 语句" in out  # binary-only receiver (SiRF binary mode)
    code, out, _ = run(["gnss", "check", str(CAPTURES / "skytraq.log")], capsys)
    assert code == 1
    assert "接收机报告无定位 17" in out
    assert "没有定位" in out
    path = CAPTURES / "gp-320fw-2019-04-07-coldboot.log"
    code, out, _ = run(["gnss", "check", str(path)], capsys)
    assert code == 1
    assert "校验和错误" in out
    assert "损坏的语句过多" in out
    path = CAPTURES / "quectel-l76k-binary.log"  # CASIC binary and $GPTXT only
    code, out, _ = run(["gnss", "check", str(path)], capsys)
    assert code == 1
    assert "没有定位语句" in out
    code, out, _ = run(["gnss", "check", str(CAPTURES / "meinberg-gps164.log")], capsys)
    assert code == 0
    assert "合格" in out
    assert "日期来自 rmc" in out


def test_check_a_capture_without_the_shared_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "teseo.nmea"
    capture.write_bytes(
        b"$"  # "$$GPGGA", as ST Teseo prints
        + QUECTEL_GGA.encode()
        + b"\r\n"
        + NAV_PVT
        + QUECTEL_RMC.encode()
        + b"\r\n"
    )
    code, out, _ = run(["gnss", "check", str(capture), "--json"], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [line["date_source"] for line in lines[:-1]] == ["clock", "rmc"]
    assert lines[-1]["summary"]["sentences"] == {"GGA": 1, "RMC": 1}
    assert lines[-1]["summary"]["noise_bytes"] == len(NAV_PVT) + 5  # "$", 2 CR LF


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A receiver on a TCP port (what ser2net or a GNSS-over-IP box offers)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    to_send: list[bytes] = []

    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            time.sleep(0.3)  # pyserial drops what arrives while it opens the port
            for data in to_send:
                conn.sendall(data)
            done.wait(10)  # a receiver keeps talking; this one keeps the line up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"socket://127.0.0.1:{port}", to_send
    done.set()
    thread.join(timeout=5)
    server.close()


def test_check_a_live_port(
    receiver: tuple[str, list[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, to_send = receiver
    to_send += [
        NAV_PVT + QUECTEL_PMTK.encode() + b"\r\n" + QUECTEL_RMC.encode()[:20],
        QUECTEL_RMC.encode()[20:] + b"\r\n" + NAV_PVT,
    ]
    code, out, err = run(["gnss", "check", url, "--json", "--seconds", "1"], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert err == ""
    assert lines[0]["lat"] == pytest.approx(31 + 50.7238 / 60)
    assert lines[0]["refused"] == "stale"  # 2013 is long gone on a live port
    summary = lines[-1]["summary"]
    assert summary["sentences"] == {"proprietary": 1, "RMC": 1}
    assert summary["refused"] == {"stale": 1}
    assert code == 0


def test_a_port_that_cannot_be_opened(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["gnss", "check", "/dev/no-such-gnss"], capsys)
    assert code == 2
    assert out == ""
    assert "无法打开 /dev/no-such-gnss" in err


def test_gpsd_log_comments_are_skipped_across_chunks() -> None:
    comments = CommentFilter()
    got = comments.feed(b"# Name: x $GPGGA in a comm") + comments.feed(
        b"ent\n#\n" + QUECTEL_RMC.encode() + b"\r\n# binary, not a comment\n"
    )
    assert got == QUECTEL_RMC.encode() + b"\r\n# binary, not a comment\n"
    assert comments.feed(b"#\n") == b"#\n"  # past the header


@needs_captures
def test_check_piped_into_head_ends_quietly() -> None:
    path = CAPTURES / "ublox-zed-f9p_hpg1.11.log"
    with subprocess.Popen(
        [sys.executable, "-m", "baling.cli", "gnss", "check", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # what "| head -1" does
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 1
    assert json.loads(first)["talker"] == "GN"
    assert err == b""


def test_check_on_a_latin1_terminal_does_not_crash(tmp_path: Path) -> None:
    capture = tmp_path / "rmc.nmea"
    capture.write_bytes(QUECTEL_RMC.encode() + b"\r\n")
    done = subprocess.run(
        [sys.executable, "-m", "baling.cli", "gnss", "check", str(capture)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "latin-1"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert b"31.8453967" in done.stdout  # the fix is printed, Chinese as "?"
