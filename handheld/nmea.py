"""NMEA 0183 sentences from a GPS/BeiDou receiver → fixes.

Pure: text lines in, :class:`Fix` values out. pynmea2 parses and checks the
checksum; this module keeps the sentences a fix needs (GGA for position,
quality, satellites and HDOP; RMC for date, validity, speed and course) from
any talker — ``GP`` (GPS), ``BD``/``GB`` (BeiDou), ``GN`` (combined), ``GL``,
``GA`` — and merges the GGA and RMC of one epoch. Reading the serial line is
the agent's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime

import pynmea2

from edge.errors import HardwareError

TALKERS = frozenset({"GP", "BD", "GB", "GN", "GL", "GA"})
KNOT_MPS = 0.514444


class NmeaError(HardwareError, ValueError):
    """A sentence that cannot be used; ``reason`` is a metric-friendly word."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Sentence:
    """The fields of one GGA or RMC sentence that a fix is made of."""

    talker: str
    kind: str  # "GGA" or "RMC"
    time: dtime
    lat: float | None
    lon: float | None
    quality: int = 0  # GGA: 0 none, 1 GNSS, 2 differential, 4/5 RTK
    sats: int | None = None
    hdop: float | None = None
    valid: bool = False  # RMC status A
    day: date | None = None
    speed_mps: float | None = None
    course: float | None = None


@dataclass(frozen=True, slots=True)
class Fix:
    """One epoch's position from the receiver."""

    time: datetime
    lat: float
    lon: float
    quality: int
    sats: int | None
    hdop: float | None
    speed_mps: float
    course: float | None
    talker: str


def _number(value: object) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def parse_sentence(line: str) -> Sentence | None:
    """Parse one line; ``None`` for well-formed sentences a fix does not need.

    Raises:
        NmeaError: bad checksum (``checksum``), unparsable (``parse``), or an
            unknown talker (``talker``).
    """
    text = line.strip()
    try:
        msg = pynmea2.parse(text, check=True)
    except pynmea2.ChecksumError as exc:
        raise NmeaError(
            f"checksum: {exc.args[0]} in {text!r:.90}", reason="checksum"
        ) from exc
    except (pynmea2.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise NmeaError(
            f"expected an NMEA sentence, got {text!r:.90}", reason="parse"
        ) from exc
    talker = getattr(msg, "talker", "")
    kind = getattr(msg, "sentence_type", "")
    if kind not in {"GGA", "RMC"}:
        return None
    if talker not in TALKERS:
        raise NmeaError(
            f"expected a talker of {sorted(TALKERS)}, got {talker!r}", reason="talker"
        )
    try:
        return _fields(msg, talker, kind)
    except (AttributeError, TypeError, ValueError) as exc:
        raise NmeaError(
            f"bad {kind} fields in {text!r:.90}: {exc}", reason="parse"
        ) from exc


def _fields(msg: pynmea2.NMEASentence, talker: str, kind: str) -> Sentence | None:
    stamp = msg.timestamp
    if not isinstance(stamp, dtime):
        return None  # a receiver without time yet: nothing to date a fix by
    has_pos = bool(msg.lat) and bool(msg.lon)
    lat = float(msg.latitude) if has_pos else None
    lon = float(msg.longitude) if has_pos else None
    if kind == "GGA":
        quality = int(msg.gps_qual or 0)
        sats = _number(msg.num_sats)
        return Sentence(
            talker=talker,
            kind=kind,
            time=stamp,
            lat=lat,
            lon=lon,
            quality=quality,
            sats=None if sats is None else int(sats),
            hdop=_number(msg.horizontal_dil),
        )
    knots = _number(msg.spd_over_grnd)
    return Sentence(
        talker=talker,
        kind=kind,
        time=stamp,
        lat=lat,
        lon=lon,
        valid=msg.status == "A",
        day=msg.datestamp,
        speed_mps=None if knots is None else knots * KNOT_MPS,
        course=_number(msg.true_course),
    )


class FixAssembler:
    """Merge the GGA and RMC of each epoch into one :class:`Fix`.

    A fix is made when the GGA of an epoch arrives and the date is known (from
    an RMC); speed and course come from the RMC of the same second when there
    is one. An RMC with status V (void) voids its epoch.
    """

    def __init__(self) -> None:
        self._day: date | None = None
        self._gga: Sentence | None = None
        self._rmc: Sentence | None = None

    def feed(self, sentence: Sentence) -> Fix | None:
        """Take one sentence; return a fix when an epoch is complete."""
        if sentence.kind == "RMC":
            if sentence.day is not None:
                self._day = sentence.day
            self._rmc = sentence
            if self._gga is not None and self._gga.time == sentence.time:
                return self._make(self._gga)
            return None
        self._gga = sentence
        if self._rmc is not None and self._rmc.time == sentence.time:
            return self._make(sentence)
        return None  # wait for this epoch's RMC

    def _make(self, gga: Sentence) -> Fix | None:
        rmc = self._rmc
        self._gga = None
        self._rmc = None
        if self._day is None or gga.lat is None or gga.lon is None:
            return None
        if gga.quality == 0 or (rmc is not None and not rmc.valid):
            return None
        return Fix(
            time=datetime.combine(self._day, gga.time.replace(tzinfo=None), tzinfo=UTC),
            lat=gga.lat,
            lon=gga.lon,
            quality=gga.quality,
            sats=gga.sats,
            hdop=gga.hdop,
            speed_mps=(rmc.speed_mps or 0.0) if rmc else 0.0,
            course=rmc.course if rmc else None,
            talker=gga.talker,
        )
