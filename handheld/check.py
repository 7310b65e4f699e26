"""``baling gnss check``: qualify a GNSS receiver from a capture or a live port.

The shell a technician runs on a receiver model before it goes into a
handheld: it reads a capture file (raw bytes as the receiver sent them;
gpsd regression logs' ``#`` header lines are skipped) or a live port by
pyserial URL (``/dev/ttyUSB0``, ``socket://host:port``, ``rfc2217://``),
feeds :class:`handheld.reader.GnssReader`, runs each fix through the
handheld's own trust filter (:func:`handheld.gnss.refuse_fix`; staleness
only on a live port, a capture is old by nature) and prints one line per
fix and a summary of what was refused and why, in Chinese for people or as
JSON lines with ``--json``. Parsing is the reader's job.

Exit status: 0 the receiver gave fixes and little junk, 1 it did not (the
summary's ``verdict`` says why), 2 the source could not be opened.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import serial

from handheld.epoch import Fix
from handheld.gnss import FixLimits, refuse_fix
from handheld.nmea import POSITION_KINDS
from handheld.reader import GnssReader

if TYPE_CHECKING:
    from collections.abc import Iterator

CHUNK = 4096
JUNK_SHARE = 0.05  # more than this share of broken sentences: "junk"
JUNK_WITHOUT_NMEA = 10
REASONS_ZH = {
    "checksum": "校验和错误",
    "malformed": "格式错误",
    "date": "日期无效",
    "no_fix": "接收机报告无定位",
    "hdop": "精度因子过大",
    "stale": "定位过时",
    "jump": "位置跳变",
    "simulated": "模拟或手动输入的位置",
}
VERDICTS_ZH = {
    "ok": "合格：收到可用定位",
    "no_fix": "接收机数据正常，但没有定位（检查天线，到空旷处重试）",
    "junk": "损坏的语句过多（检查波特率、接线和干扰）",
    "no_nmea": "收到数据但没有 NMEA 语句（检查波特率，或接收机只输出二进制协议）",
    "no_position": "收到 NMEA，但没有定位语句 GGA/RMC/GNS/GLL（请在接收机配置中打开）",
    "silent": "没有收到任何数据（检查端口和接线）",
}


class CommentFilter:
    """Drop the ``#`` header lines of a gpsd regression log; pass the rest.

    Only the block at the top: further down a ``#`` may be binary data.
    """

    def __init__(self) -> None:
        self._header = True
        self._line_start = True

    def feed(self, data: bytes) -> bytes:
        """Return ``data`` without header lines (state carries across chunks)."""
        if not self._header:
            return data
        lines = data.splitlines(keepends=True)
        for n, line in enumerate(lines):
            if self._line_start and not line.startswith(b"#"):
                self._header = False
                return b"".join(lines[n:])
            self._line_start = line.endswith(b"\n")
        return b""


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        first = fh.read(CHUNK)
        comments = CommentFilter() if first.startswith(b"#") else None
        chunk = first
        while chunk:
            yield comments.feed(chunk) if comments else chunk
            chunk = fh.read(CHUNK)


def _port_chunks(port: serial.SerialBase, seconds: float) -> Iterator[bytes]:
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            data = port.read(CHUNK)
            if data:
                yield data
    except KeyboardInterrupt:
        return
    except (serial.SerialException, OSError) as exc:
        sys.stderr.write(f"baling gnss check: 端口已断开，停止读取：{exc}\n")
    finally:
        port.close()


def fix_record(fix: Fix, refused: str | None) -> dict[str, Any]:
    """The JSON object printed for one fix."""
    return {
        "time": fix.time.isoformat(),
        "lat": fix.lat,
        "lon": fix.lon,
        "quality": fix.quality,
        "sats": fix.sats,
        "hdop": fix.hdop,
        "altitude": fix.altitude,
        "speed_mps": round(fix.speed_mps, 3),
        "course": fix.course,
        "talker": fix.talker,
        "date_source": fix.date_source,
        "sentences": list(fix.sentences),
        "trusted": refused is None,
        "refused": refused,
    }


def verdict(reader: GnssReader) -> str:
    """One word for the receiver: see :data:`VERDICTS_ZH`."""
    if reader.bytes_read == 0:
        return "silent"
    if reader.good == 0:
        # a few "$" in binary data look like broken sentences; many are junk
        return "junk" if reader.junk >= JUNK_WITHOUT_NMEA else "no_nmea"
    if reader.junk > JUNK_SHARE * (reader.good + reader.junk):
        return "junk"
    if reader.fixes:
        return "ok"
    if not any(reader.sentences[kind] for kind in POSITION_KINDS):
        return "no_position"
    return "no_fix"


def check_stream(
    chunks: Iterator[bytes], *, live: bool, out: TextIO, as_json: bool, source: str
) -> int:
    """Read ``chunks`` to the end, print fixes and the summary; return the status."""
    reader = GnssReader()
    limits = FixLimits()
    filtered: Counter[str] = Counter()
    talkers: Counter[str] = Counter()
    dates: Counter[str] = Counter()
    last: Fix | None = None
    trusted = 0

    def show(items: list[Any], now: datetime) -> None:
        nonlocal last, trusted
        for item in items:
            if not isinstance(item, Fix):
                continue
            why = refuse_fix(item, last, now=now if live else item.time, limits=limits)
            talkers[item.talker] += 1
            dates[item.date_source] += 1
            if why is None:
                trusted += 1
                if live or item.date_source != "clock":
                    last = item  # a capture's clock-dated fix: today, not then
            else:
                filtered[why] += 1
            _print_fix(out, fix_record(item, why), as_json=as_json)

    for chunk in chunks:
        now = datetime.now(UTC)
        show(reader.feed(chunk, now=now), now)
    now = datetime.now(UTC)
    show(reader.finish(now=now), now)
    word = verdict(reader)
    summary = {
        "source": source,
        "bytes": reader.bytes_read,
        "noise_bytes": reader.noise_bytes,
        "sentences": dict(reader.sentences),
        "fixes": reader.fixes,
        "trusted": trusted,
        "refused": dict(reader.refused + filtered),
        "junk": reader.junk,
        "no_fix": reader.refused["no_fix"],
        "talkers": dict(talkers),
        "date_sources": dict(dates),
        "verdict": word,
    }
    _print_summary(out, summary, as_json=as_json)
    return 0 if word == "ok" else 1


def _print_fix(out: TextIO, rec: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return
    state = "可信" if rec["trusted"] else f"不采用：{REASONS_ZH[rec['refused']]}"
    out.write(
        f"{rec['time']}  纬度 {rec['lat']:.7f}  经度 {rec['lon']:.7f}  "
        f"质量 {rec['quality']}  卫星 {rec['sats'] if rec['sats'] is not None else '-'}"
        f"  HDOP {rec['hdop'] if rec['hdop'] is not None else '-'}  "
        f"日期来自 {rec['date_source']}  语句 {','.join(rec['sentences'])}  {state}\n"
    )


def _print_summary(out: TextIO, summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        out.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
        return
    refused = summary["refused"]
    lines = [
        f"来源：{summary['source']}",
        f"字节：{summary['bytes']}（其中非 NMEA 字节 {summary['noise_bytes']}）",
        "语句："
        + (
            "，".join(f"{k} {v}" for k, v in sorted(summary["sentences"].items()))
            or "无"
        ),
        f"定位：{summary['fixes']}（可信 {summary['trusted']}）",
        "拒绝："
        + (
            "，".join(f"{REASONS_ZH.get(k, k)} {v}" for k, v in sorted(refused.items()))
            or "无"
        ),
        f"结论：{VERDICTS_ZH[summary['verdict']]}",
    ]
    out.write("\n".join(lines) + "\n")


def run_check(
    source: str,
    *,
    as_json: bool,
    baud: int,
    seconds: float,
    out: TextIO | None = None,
) -> int:
    """Check a capture file or a live port; the ``baling gnss check`` command.

    Args:
        source: a file path, or a pyserial URL / device path.
        as_json: print JSON lines instead of Chinese text.
        baud: the port's baud rate (ignored for files).
        seconds: how long to read a live port.
        out: where to print (stdout by default).

    Returns:
        0 the receiver qualifies, 1 it does not, 2 the source cannot be read.
    """
    for std in (sys.stdout, sys.stderr):
        if out is None and isinstance(std, io.TextIOWrapper):
            std.reconfigure(errors="replace")  # a Latin-1 terminal: "?", no crash
    stream = out or sys.stdout
    try:
        return _check(source, as_json=as_json, baud=baud, seconds=seconds, out=stream)
    except BrokenPipeError:
        # "| head": the reader left; say nothing more (and not at exit either)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _check(
    source: str, *, as_json: bool, baud: int, seconds: float, out: TextIO
) -> int:
    stream = out
    path = Path(source)
    if path.is_file():
        return check_stream(
            _file_chunks(path), live=False, out=stream, as_json=as_json, source=source
        )
    try:
        port = serial.serial_for_url(source, baudrate=baud, timeout=0.2)
    except (serial.SerialException, OSError, ValueError) as exc:
        sys.stderr.write(f"baling gnss check: 无法打开 {source}：{exc}\n")
        return 2
    return check_stream(
        _port_chunks(port, seconds),
        live=True,
        out=stream,
        as_json=as_json,
        source=source,
    )
