"""NMEA 0183 from a GNSS receiver's byte stream: sentences and their fields.

Pure: bytes in, sentences out. :class:`SentenceFramer` finds every
``$…*hh`` sentence wherever it sits in the stream — after binary UBX, RTCM
or SiRF frames on the same line, after the ``$$`` that ST Teseo receivers
print, several on one line, split across reads — and hands over the text
of each; bytes between sentences are only counted. :func:`parse_sentence`
checks the checksum and reads the fields a fix is made of from any
standard talker (``GP``, ``GL``, ``GA``, ``GB``/``BD``, ``GQ``, ``GI``,
``GN``, ``IN``, …): position from GGA, RMC, GNS and GLL, the date from RMC
and ZDA, speed and course from RMC and VTG. Proprietary (``$P…``) and
other sentences (``GSV``, ``GSA``, ``TXT``, …) are :class:`Ignored`, not
errors. Field layouts follow NMEA 0183 as the u-blox M8 and Quectel L80
protocol manuals describe it. Merging the sentences of an epoch into a fix is
:mod:`handheld.epoch`'s job; reading the serial line is the agent's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from datetime import time as dtime

from edge.errors import HardwareError
from handheld.errors import HandheldError

KNOT_MPS = 0.514444
KMH_MPS = 1 / 3.6
# NMEA 0183 allows 82 characters; vendors run longer (Quectel: at most 255).
MAX_SENTENCE = 255
MAX_ADDRESS = 24  # "$PSTMANTENNASTATUS" and friends
MIN_ADDRESS = 2
MIN_YEAR, MAX_YEAR = 1980, 2200  # GPS time starts in 1980
POSITION_KINDS = frozenset({"GGA", "RMC", "GNS", "GLL"})
KINDS = POSITION_KINDS | {"ZDA", "VTG"}

_DOLLAR, _STAR, _COMMA, _CR, _LF = 0x24, 0x2A, 0x2C, 0x0D, 0x0A
_ADDRESS_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX_BYTES = frozenset(b"0123456789ABCDEFabcdef")
_UPPER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ENDS = frozenset({_STAR, _DOLLAR, _CR, _LF})
_TIME = re.compile(r"(\d\d)(\d\d)(\d\d)(\.\d{1,9})?")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)")
_COORD = re.compile(r"(\d{1,3})(\d\d(?:\.\d*)?)")
_DDMMYY = re.compile(r"(\d\d)(\d\d)(\d\d)")
_TALKER = re.compile(r"[A-Z]{2}")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_KIND = re.compile(r"[A-Z]{3}")
# RMC/GLL/GNS mode letters → the GGA quality they mean (NMEA 0183 v2.3+).
MODE_QUALITY = {"A": 1, "D": 2, "P": 3, "R": 4, "F": 5, "E": 6, "M": 7, "S": 8}


class NmeaError(HandheldError, HardwareError, ValueError):
    """A sentence that cannot be used; ``reason`` is a metric-friendly word.

    Reasons: ``checksum`` (missing or wrong), ``malformed`` (a field or the
    framing is not NMEA), ``date`` (a valid fix with an impossible date).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Framed:
    """One thing the framer found: a sentence's text, or a refused candidate."""

    text: str = ""  # "$GNGGA,...*hh" (a leading "$$" already dropped)
    # "malformed" or "checksum" when refused; "proprietary": a vendor's
    # sentence that is not well-formed NMEA, skipped without judging it
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed sentence a fix does not need."""

    address: str  # "GPGSV", "PUBX", ...
    why: str  # "proprietary" or "other"


@dataclass(frozen=True, slots=True)
class Sentence:
    """The fields of one GGA, RMC, GNS, GLL, ZDA or VTG sentence."""

    talker: str
    kind: str
    time: dtime | None = None
    lat: float | None = None
    lon: float | None = None
    fix: bool = False  # the receiver says this position is a fix
    quality: int = 0  # GGA quality (or the mode letter's equivalent)
    sats: int | None = None
    hdop: float | None = None
    altitude: float | None = None
    day: date | None = None
    speed_mps: float | None = None
    course: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"expected a kind of {sorted(KINDS)}, got {self.kind!r}")


class SentenceFramer:
    """Cut a receiver's byte stream into NMEA sentences, incrementally.

    Chunk boundaries never change the result: a decision that needs a byte
    not yet read waits for it, and :meth:`finish` settles what is left at
    the end of a capture. Memory is bounded by :data:`MAX_SENTENCE`.
    """

    def __init__(self, *, max_len: int = MAX_SENTENCE) -> None:
        if max_len < 11:  # noqa: PLR2004 - "$GPXXX,*hh" and one more
            raise ValueError(f"expected max_len >= 11, got {max_len}")
        self._max_len = max_len
        self._buf = bytearray()
        self.noise_bytes = 0  # bytes outside any sentence (binary, idle line)

    def feed(self, data: bytes) -> list[Framed]:
        """Take the next bytes; return the sentences (and refusals) completed."""
        self._buf += data
        return self._scan(final=False)

    def finish(self) -> list[Framed]:
        """End of stream: settle a sentence cut off at the end."""
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> list[Framed]:
        buf = self._buf
        out: list[Framed] = []
        pos = 0
        while True:
            start = buf.find(b"$", pos)
            if start < 0:
                self.noise_bytes += len(buf) - pos
                pos = len(buf)
                break
            self.noise_bytes += start - pos
            found, end = self._frame(buf, start, final=final)
            if end < 0:
                pos = start  # wait for more bytes
                break
            if found is not None:
                out.append(found)
            elif end == start + 1:
                self.noise_bytes += 1  # a "$" that starts nothing
            pos = end
        del buf[:pos]
        return out

    def _frame(
        self, buf: bytearray, start: int, *, final: bool
    ) -> tuple[Framed | None, int]:
        """Frame the candidate at ``start``: (result, next position or -1 to wait)."""
        n = len(buf)
        i = start + 1
        while i < n and buf[i] in _ADDRESS_BYTES and i - start <= MAX_ADDRESS:
            i += 1
        if i >= n:
            return _at_end(buf, start, final=final)
        if (
            buf[i] not in {_COMMA, _STAR}
            or i - start < MIN_ADDRESS + 1
            or buf[start + 1] not in _UPPER
        ):
            return _not_a_sentence(buf, start, i)
        j = i
        limit = start + self._max_len
        while j < n and j <= limit and 0x20 <= buf[j] <= 0x7E and buf[j] not in _ENDS:  # noqa: PLR2004
            j += 1
        if j > limit:
            if _proprietary(buf, start):
                return _IGNORED, j
            return _refuse(buf, start, j, f"longer than {self._max_len}"), j
        if j >= n or (buf[j] == _STAR and j + 2 >= n):
            return _at_end(buf, start, final=final)  # the end is not read yet
        return _close(buf, start, j)


def _proprietary(buf: bytearray, start: int) -> bool:
    return buf[start + 1] == ord("P")


def _at_end(buf: bytearray, start: int, *, final: bool) -> tuple[Framed | None, int]:
    """The candidate runs to the end of what was read: wait, or settle it."""
    n = len(buf)
    if not final:
        return None, -1
    if n - start < 3 or buf[start + 1] not in _UPPER:  # noqa: PLR2004
        return None, n
    if _proprietary(buf, start):
        return _IGNORED, n
    return _refuse(buf, start, n, "cut off at the end"), n


def _not_a_sentence(buf: bytearray, start: int, i: int) -> tuple[Framed | None, int]:
    """A "$" whose address does not open a sentence."""
    if i - start > 5 and not _proprietary(buf, start) and not 0x20 <= buf[i] <= 0x7E:  # noqa: PLR2004
        return _refuse(buf, start, i, "address cut off"), i  # "$GPGGA" + binary
    # a "$" inside binary data, the first of "$$", a "$GPGGA" in prose, or a
    # vendor's "$PSRFTXTVersion ..."
    return None, start + 1


def _close(buf: bytearray, start: int, j: int) -> tuple[Framed | None, int]:
    """Settle a candidate whose body ended at ``buf[j]`` (all bytes present)."""
    c = buf[j]
    if c == _STAR and buf[j + 1] in _HEX_BYTES and buf[j + 2] in _HEX_BYTES:
        return Framed(text=buf[start : j + 3].decode("ascii")), j + 3
    if _proprietary(buf, start):
        # vendors' sentences without a checksum ($POLYN) or with a binary
        # payload (Ashtech $PASHR,MCA): not ours to judge
        return _IGNORED, j + 1 if c == _STAR else j
    if c == _STAR:
        return _refuse(buf, start, j + 1, "checksum field is not hex"), j + 1
    if c in {_CR, _LF}:
        text = buf[start:j].decode("ascii")
        return Framed(reason="checksum", detail=f"no checksum: {text:.60}"), j
    if c == _DOLLAR:
        return _refuse(buf, start, j, "cut off by the next sentence"), j
    return _refuse(buf, start, j, "binary data inside"), j


_IGNORED = Framed(reason="proprietary")


def _refuse(buf: bytearray, start: int, end: int, why: str) -> Framed:
    sample = bytes(buf[start:end]).decode("ascii", errors="replace")
    return Framed(reason="malformed", detail=f"{why}: {sample!r:.70}")


def checksum(body: str) -> int:
    """XOR of the characters between ``$`` and ``*`` (NMEA 0183 §5.2.3)."""
    value = 0
    for ch in body:
        value ^= ord(ch)
    return value


def parse_sentence(text: str) -> Sentence | Ignored:
    """Check one ``$…*hh`` sentence and read its fields.

    Args:
        text: the sentence, with or without a line ending.

    Returns:
        The fields of a sentence a fix needs, or :class:`Ignored`.

    Raises:
        NmeaError: ``checksum``, ``malformed`` or ``date`` (see the class).
    """
    line = text.strip()
    if line.startswith("$$"):
        line = line[1:]
    if line.startswith("$P"):
        address = line[1:].split(",", 1)[0][:MAX_ADDRESS]
        return Ignored(address=address, why="proprietary")
    body = _checked_body(line)
    fields = body.split(",")
    address = fields[0]
    talker, kind = address[:2], address[2:]
    if not _TALKER.fullmatch(talker) or not _KIND.fullmatch(kind):
        return Ignored(address=address, why="other")  # a vendor's ($LOG108)
    reader = _READERS.get(kind)
    if reader is None:
        return Ignored(address=address, why="other")
    try:
        return reader(talker, fields[1:])
    except NmeaError:
        raise
    except (IndexError, ValueError) as exc:
        raise NmeaError(
            f"bad {kind} in {line!r:.80}: {exc}", reason="malformed"
        ) from exc


def _checked_body(line: str) -> str:
    """The text between ``$`` and ``*`` once the checksum is right.

    Raises:
        NmeaError: not a printable sentence, or a missing or wrong checksum.
    """
    if not line.startswith("$") or any(not " " <= ch <= "~" for ch in line):
        raise NmeaError(
            f"expected a printable $…*hh sentence, got {line!r:.80}",
            reason="malformed",
        )
    star = line.rfind("*")
    if star < 0:
        raise NmeaError(f"expected *hh at the end, got {line!r:.80}", reason="checksum")
    given = line[star + 1 :]
    body = line[1:star]
    expected = int(given, 16) if _HEX2.fullmatch(given) else -1
    got = checksum(body)
    if expected != got:
        raise NmeaError(
            f"expected checksum {got:02X}, got {given!r} in {line!r:.80}",
            reason="checksum",
        )
    return body


# -- fields ------------------------------------------------------------------
def _need(fields: list[str], count: int, kind: str) -> None:
    if len(fields) < count:
        raise NmeaError(
            f"expected at least {count} fields in {kind}, got {len(fields)}",
            reason="malformed",
        )


def parse_time(value: str) -> dtime | None:
    """``hhmmss[.sss]`` → time of day (UTC); empty → None.

    Raises:
        NmeaError: not a time of day (``malformed``).
    """
    if not value:
        return None
    m = _TIME.fullmatch(value)
    if m is None:
        raise NmeaError(f"expected hhmmss.ss, got {value!r}", reason="malformed")
    hh, mm, ss = int(m[1]), int(m[2]), int(m[3])
    micro = min(round(float(m[4] or "0") * 1_000_000), 999_999)
    if hh > 23 or mm > 59 or ss > 60:  # noqa: PLR2004 - 60: a leap second
        raise NmeaError(f"expected a time of day, got {value!r}", reason="malformed")
    if ss == 60:  # noqa: PLR2004 - datetime has no leap second: its last instant
        ss, micro = 59, 999_999
    return dtime(hh, mm, ss, micro)


def _number(value: str, name: str) -> float | None:
    if not value:
        return None
    if _NUMBER.fullmatch(value) is None:
        raise NmeaError(
            f"expected a number for {name}, got {value!r}", reason="malformed"
        )
    return float(value)


def _count(value: str, name: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 3:  # noqa: PLR2004
        raise NmeaError(
            f"expected a count for {name}, got {value!r}", reason="malformed"
        )
    return int(value)


def parse_coord(value: str, hemi: str, *, lat: bool) -> float | None:
    """``ddmm.mmmm,N`` / ``dddmm.mmmm,E`` → signed degrees; both empty → None.

    Raises:
        NmeaError: not a coordinate (``malformed``).
    """
    if not value and not hemi:
        return None
    m = _COORD.fullmatch(value)
    ok = "NS" if lat else "EW"
    if m is None or len(hemi) != 1 or hemi not in ok:
        shape = "ddmm.mm,N|S" if lat else "dddmm.mm,E|W"
        raise NmeaError(f"expected {shape}, got {value!r},{hemi!r}", reason="malformed")
    degrees, minutes = int(m[1]), float(m[2])
    result = degrees + minutes / 60
    if minutes >= 60 or result > (90 if lat else 180):  # noqa: PLR2004
        raise NmeaError(
            f"expected a {'latitude' if lat else 'longitude'}, got {value!r}",
            reason="malformed",
        )
    return -result if hemi in "SW" else result


def parse_ddmmyy(value: str) -> date:
    """RMC's ``ddmmyy`` → a date (years 80–99 are 1980–1999, NMEA's pivot).

    Raises:
        NmeaError: ``date`` for 000000, month 13 and other impossible dates.
    """
    m = _DDMMYY.fullmatch(value)
    if m is None:
        raise NmeaError(f"expected ddmmyy, got {value!r}", reason="date")
    yy = int(m[3])
    return _date(2000 + yy if yy < 80 else 1900 + yy, int(m[2]), int(m[1]), value)  # noqa: PLR2004


def _date(year: int, month: int, day: int, raw: str) -> date:
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise NmeaError(
            f"expected a calendar date, got {raw!r}", reason="date"
        ) from exc


def _position(
    fields: list[str], at: int, *, claimed: bool
) -> tuple[float | None, float | None]:
    """The lat/lon at ``fields[at:at+4]``; junk only where a fix is claimed.

    A receiver without a fix may print anything there (zeros, "36000.0000"
    after a cold start); that is "no fix", not a broken sentence.
    """
    try:
        lat = parse_coord(fields[at], fields[at + 1], lat=True)
        lon = parse_coord(fields[at + 2], fields[at + 3], lat=False)
    except NmeaError:
        if claimed:
            raise
        return None, None
    if (lat is None) != (lon is None):
        if claimed:
            raise NmeaError(
                f"expected both latitude and longitude, got {fields[at : at + 4]}",
                reason="malformed",
            )
        return None, None
    return lat, lon


def _read_gga(talker: str, f: list[str]) -> Sentence:
    _need(f, 9, "GGA")
    if f[5] and not f[5].isdigit():
        raise NmeaError(
            f"expected a GGA quality digit, got {f[5]!r}", reason="malformed"
        )
    quality = int(f[5]) if f[5] else 0
    lat, lon = _position(f, 1, claimed=quality > 0)
    return Sentence(
        talker=talker,
        kind="GGA",
        time=parse_time(f[0]),
        lat=lat,
        lon=lon,
        fix=quality > 0 and lat is not None,
        quality=quality,
        sats=_count(f[6], "satellites"),
        hdop=_number(f[7], "HDOP"),
        altitude=_number(f[8], "altitude"),
    )


def _read_rmc(talker: str, f: list[str]) -> Sentence:
    _need(f, 9, "RMC")
    mode = f[11] if len(f) > 11 else ""  # noqa: PLR2004
    claimed = f[1] == "A" and mode[:1] != "N"  # status A; NMEA 2.3 mode not N
    lat, lon = _position(f, 2, claimed=claimed)
    fix = claimed and lat is not None
    day: date | None = None
    if f[8] and fix:
        day = parse_ddmmyy(f[8])
    elif f[8]:
        try:  # a receiver without a fix may print any date: not junk
            day = parse_ddmmyy(f[8])
        except NmeaError:
            day = None
    knots = _number(f[6], "speed")
    return Sentence(
        talker=talker,
        kind="RMC",
        time=parse_time(f[0]),
        lat=lat,
        lon=lon,
        fix=fix,
        quality=MODE_QUALITY.get(mode[:1], 1) if fix else 0,
        day=day,
        speed_mps=None if knots is None else knots * KNOT_MPS,
        course=_number(f[7], "course"),
    )


def _read_gns(talker: str, f: list[str]) -> Sentence:
    _need(f, 9, "GNS")
    mode = f[5]
    if mode and not mode.isalpha():
        raise NmeaError(f"expected GNS mode letters, got {mode!r}", reason="malformed")
    letters = [c for c in mode if c != "N"]  # one letter per constellation
    lat, lon = _position(f, 1, claimed=bool(letters))
    return Sentence(
        talker=talker,
        kind="GNS",
        time=parse_time(f[0]),
        lat=lat,
        lon=lon,
        fix=bool(letters) and lat is not None,
        quality=max((MODE_QUALITY.get(c, 1) for c in letters), default=0),
        sats=_count(f[6], "satellites"),
        hdop=_number(f[7], "HDOP"),
        altitude=_number(f[8], "altitude"),
    )


def _read_gll(talker: str, f: list[str]) -> Sentence:
    _need(f, 4, "GLL")
    status = f[5] if len(f) > 5 else ""  # noqa: PLR2004 - NMEA 1.5 had no status
    mode = f[6] if len(f) > 6 else ""  # noqa: PLR2004
    claimed = status == "A" and mode[:1] != "N"
    lat, lon = _position(f, 0, claimed=claimed)
    fix = claimed and lat is not None
    return Sentence(
        talker=talker,
        kind="GLL",
        time=parse_time(f[4]) if len(f) > 4 else None,  # noqa: PLR2004
        lat=lat,
        lon=lon,
        fix=fix,
        quality=MODE_QUALITY.get(mode[:1], 1) if fix else 0,
    )


def _read_zda(talker: str, f: list[str]) -> Sentence:
    _need(f, 4, "ZDA")
    day: date | None = None
    if f[1] or f[2] or f[3]:
        if not (f[1].isdigit() and f[2].isdigit() and f[3].isdigit()) or len(f[3]) != 4:  # noqa: PLR2004
            raise NmeaError(
                f"expected ZDA dd,mm,yyyy, got {','.join(f[1:4])!r}", reason="date"
            )
        day = _date(int(f[3]), int(f[2]), int(f[1]), ",".join(f[1:4]))
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise NmeaError(
                f"expected a year {MIN_YEAR}-{MAX_YEAR}, got {day.year}", reason="date"
            )
    return Sentence(talker=talker, kind="ZDA", time=parse_time(f[0]), day=day)


def _read_vtg(talker: str, f: list[str]) -> Sentence:
    _need(f, 4, "VTG")
    if len(f) >= 7 and f[1] in {"T", ""} and f[5] in {"N", ""}:  # noqa: PLR2004
        course, knots = _number(f[0], "course"), _number(f[4], "speed")
        kmh = _number(f[6], "speed") if len(f) > 6 else None  # noqa: PLR2004
    else:  # NMEA 1.5: course true, course magnetic, knots, km/h
        course, knots, kmh = (
            _number(f[0], "course"),
            _number(f[2], "speed"),
            _number(f[3], "speed"),
        )
    speed = knots * KNOT_MPS if knots is not None else None
    if speed is None and kmh is not None:
        speed = kmh * KMH_MPS
    return Sentence(talker=talker, kind="VTG", speed_mps=speed, course=course)


_READERS = {
    "GGA": _read_gga,
    "RMC": _read_rmc,
    "GNS": _read_gns,
    "GLL": _read_gll,
    "ZDA": _read_zda,
    "VTG": _read_vtg,
}
