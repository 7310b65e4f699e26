"""The sentences of one epoch → one fix (or one counted "no fix").

Pure: sentences and the node's time in, fixes out. A receiver prints, once
per epoch, some of GGA, RMC, GNS, GLL, ZDA and VTG, all stamped with the same
time of day. :class:`FixAssembler` groups them by that time and makes a fix
from whatever the receiver sends — GGA with RMC, RMC alone, GGA alone, GNS or
GLL — taking the position from the richest sentence that says it has a fix
(GGA, then GNS, RMC, GLL), speed and course from RMC or VTG, and the date
from this epoch's RMC or ZDA, else the last one seen (rolled over at
midnight), else the node's clock; the fix says which (``date_source``). An
epoch is complete when the next one starts, or as soon as it holds every
sentence the last two epochs held, so a steady receiver's fix comes without
waiting a second. Which fixes to trust (HDOP, staleness, jumps) is
:mod:`handheld.gnss`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import time as dtime

    from handheld.nmea import Sentence

_POSITION_ORDER = ("GGA", "GNS", "RMC", "GLL")
DATE_SOURCES = frozenset({"rmc", "zda", "clock"})
FIRST_PATTERN = frozenset({"GGA", "RMC"})
HALF_DAY_S = 43_200  # a time of day this far back means the next day


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
    date_source: str = "rmc"  # "rmc", "zda" or "clock"
    sentences: tuple[str, ...] = ()  # the kinds it was made of, e.g. ("GGA", "RMC")
    altitude: float | None = None

    def __post_init__(self) -> None:
        if self.date_source not in DATE_SOURCES:
            raise ValueError(
                f"expected a date source of {sorted(DATE_SOURCES)}, "
                f"got {self.date_source!r}"
            )
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):  # noqa: PLR2004
            raise ValueError(
                f"expected a position on Earth, got {self.lat}, {self.lon}"
            )


@dataclass(frozen=True, slots=True)
class NoFix:
    """An epoch in which the receiver said it has no position."""

    time: dtime
    sentences: tuple[str, ...]


@dataclass(slots=True)
class _Epoch:
    time: dtime
    parts: dict[str, Sentence] = field(default_factory=dict)
    done: bool = False


class FixAssembler:
    """Merge the sentences of each epoch into one :class:`Fix`."""

    def __init__(self) -> None:
        self._epoch: _Epoch | None = None
        self._kinds: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        self._day: date | None = None
        self._day_source = "clock"
        self._day_time: dtime | None = None

    def feed(self, sentence: Sentence, *, now: datetime) -> list[Fix | NoFix]:
        """Take one sentence; return the epochs it completed.

        Args:
            sentence: a GGA, RMC, GNS, GLL, ZDA or VTG.
            now: the node's clock, for a date when the receiver sends none.

        Returns:
            Zero, one or two outcomes (the epoch this sentence closed, and
            this sentence's own epoch when it is already complete).
        """
        out: list[Fix | NoFix] = []
        epoch = self._epoch
        if sentence.time is None:
            if sentence.kind == "VTG" and epoch is not None:
                epoch.parts.setdefault("VTG", sentence)
                if not epoch.done:
                    out += self._maybe_complete(epoch, now)
            return out  # a position without a time cannot be placed in an epoch
        if epoch is None or _starts_epoch(epoch, sentence):
            if epoch is not None:
                self._kinds = (self._kinds[1], frozenset(epoch.parts))
                if not epoch.done:
                    out += self._complete(epoch, now)
            epoch = self._epoch = _Epoch(time=sentence.time)
        if epoch.done:
            # already reported; remembered so the next epoch waits for it
            epoch.parts.setdefault(sentence.kind, sentence)
            return out
        epoch.parts.setdefault(sentence.kind, sentence)
        out += self._maybe_complete(epoch, now)
        return out

    def finish(self, *, now: datetime) -> list[Fix | NoFix]:
        """End of stream: complete the last epoch."""
        epoch = self._epoch
        self._epoch = None
        if epoch is None or epoch.done:
            return []
        return self._complete(epoch, now)

    def _maybe_complete(self, epoch: _Epoch, now: datetime) -> list[Fix | NoFix]:
        # what the last two epochs held: one lost sentence does not make the
        # next epoch complete without it
        # (before anything is learnt: the classic GGA + RMC pair)
        pattern = self._kinds[0] | self._kinds[1] or FIRST_PATTERN
        if pattern <= epoch.parts.keys():
            return self._complete(epoch, now)
        return []

    def _complete(self, epoch: _Epoch, now: datetime) -> list[Fix | NoFix]:
        epoch.done = True
        parts = epoch.parts
        kinds = tuple(sorted(parts))
        self._learn_date(epoch)
        pos = next(
            (parts[k] for k in _POSITION_ORDER if k in parts and parts[k].fix), None
        )
        if pos is None or pos.lat is None or pos.lon is None:
            return [NoFix(time=epoch.time, sentences=kinds)] if _says(parts) else []
        moving = parts.get("RMC") or parts.get("VTG")
        at = pos.time or epoch.time
        day, source = self._date_for(at, now)
        return [
            Fix(
                time=datetime.combine(day, at.replace(tzinfo=None), tzinfo=UTC),
                lat=pos.lat,
                lon=pos.lon,
                quality=pos.quality,
                sats=next((s.sats for s in _fixers(parts) if s.sats is not None), None),
                hdop=next((s.hdop for s in _fixers(parts) if s.hdop is not None), None),
                speed_mps=(moving.speed_mps or 0.0) if moving else 0.0,
                course=moving.course if moving else None,
                talker=pos.talker,
                date_source=source,
                sentences=kinds,
                altitude=next(
                    (s.altitude for s in _fixers(parts) if s.altitude is not None), None
                ),
            )
        ]

    def _learn_date(self, epoch: _Epoch) -> None:
        for kind, source in (("RMC", "rmc"), ("ZDA", "zda")):
            got = epoch.parts.get(kind)
            # a void RMC's date may be the receiver's unset clock (06-01-1980)
            has_fix = any(part.fix for part in epoch.parts.values())
            if got is not None and got.day is not None and (has_fix or kind == "ZDA"):
                self._day, self._day_source = got.day, source
                self._day_time = got.time or epoch.time
                return

    def _date_for(self, at: dtime, now: datetime) -> tuple[date, str]:
        if self._day is not None and self._day_time is not None:
            if _seconds(self._day_time) - _seconds(at) > HALF_DAY_S:
                self._day += timedelta(days=1)  # past midnight since the date
            self._day_time = at
            return self._day, self._day_source
        today = now.astimezone(UTC).date()
        candidates = [today + timedelta(days=d) for d in (-1, 0, 1)]
        naive_now = now.astimezone(UTC).replace(tzinfo=None)
        best = min(
            candidates,
            key=lambda d: abs(datetime.combine(d, at.replace(tzinfo=None)) - naive_now),
        )
        return best, "clock"


def _starts_epoch(epoch: _Epoch, sentence: Sentence) -> bool:
    """Whether ``sentence`` (which has a time) opens a new epoch.

    Some receivers stamp the sentences of one epoch a fraction apart
    (Magellan: GLL .076, GGA .08, RMC .76), so a different time opens a new
    epoch only when it repeats a kind the epoch holds (a 10 Hz receiver) or
    lies a second or more away.
    """
    at = sentence.time
    if at is None or at == epoch.time:
        return False
    if sentence.kind in epoch.parts:
        return True
    gap = abs(_seconds(at) - _seconds(epoch.time))
    return min(gap, 86_400 - gap) >= 1.0


def _seconds(at: dtime) -> float:
    return at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6


def _says(parts: dict[str, Sentence]) -> bool:
    """Whether the epoch had a position sentence at all (ZDA/VTG alone: no)."""
    return any(k in parts for k in _POSITION_ORDER)


def _fixers(parts: dict[str, Sentence]) -> list[Sentence]:
    """The epoch's sentences that carry satellites, HDOP and altitude."""
    return [parts[k] for k in ("GGA", "GNS") if k in parts]
