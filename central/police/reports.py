"""Patrol reports from stored fixes: route, stops, summary, attendance.

Pure: fixes (time, position in metres, speed) in, report rows out, in the
shapes Traccar's report API uses (``/reports/route``, ``/reports/stops``,
``/reports/summary``) with metres and seconds instead of knots and
milliseconds. Querying the fixes is the service's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import pairwise
from typing import Any

from central.errors import InvalidError


@dataclass(frozen=True, slots=True)
class Track:
    """One stored fix, projected (x, y in metres)."""

    at: datetime
    lat: float
    lon: float
    x: float
    y: float
    speed_mps: float = 0.0


def stops(
    fixes: list[Track], *, radius_m: float = 50.0, min_s: float = 300.0
) -> list[dict[str, Any]]:
    """Places the officer stayed within ``radius_m`` for at least ``min_s``."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(fixes):
        j = i
        while (
            j + 1 < len(fixes)
            and math.hypot(fixes[j + 1].x - fixes[i].x, fixes[j + 1].y - fixes[i].y)
            <= radius_m
        ):
            j += 1
        duration = (fixes[j].at - fixes[i].at).total_seconds()
        if duration >= min_s:
            out.append(
                {
                    "startTime": fixes[i].at.isoformat(),
                    "endTime": fixes[j].at.isoformat(),
                    "duration": duration,
                    "latitude": fixes[i].lat,
                    "longitude": fixes[i].lon,
                }
            )
        i = j + 1
    return out


def summary(fixes: list[Track]) -> dict[str, Any]:
    """Distance, speeds and time span of a track."""
    if not fixes:
        return {
            "distance": 0.0,
            "averageSpeed": 0.0,
            "maxSpeed": 0.0,
            "startTime": None,
            "endTime": None,
            "duration": 0.0,
            "fixes": 0,
        }
    distance = sum(math.hypot(b.x - a.x, b.y - a.y) for a, b in pairwise(fixes))
    span = (fixes[-1].at - fixes[0].at).total_seconds()
    return {
        "distance": round(distance, 1),
        "averageSpeed": round(distance / span, 2) if span > 0 else 0.0,
        "maxSpeed": round(max(f.speed_mps for f in fixes), 2),
        "startTime": fixes[0].at.isoformat(),
        "endTime": fixes[-1].at.isoformat(),
        "duration": span,
        "fixes": len(fixes),
    }


@dataclass(frozen=True, slots=True)
class Shift:
    """A duty period on some weekdays (0 = Monday), local wall-clock times."""

    days: tuple[int, ...]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or any(d not in range(7) for d in self.days):
            raise InvalidError(f"expected weekdays 0-6, got {self.days}")

    def window(self, day: datetime) -> tuple[datetime, datetime] | None:
        """The shift's start and end on the date of ``day`` (same tzinfo), if on."""
        if day.weekday() not in self.days:
            return None
        start = day.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        end = day.replace(
            hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0
        )
        if end <= start:  # a night shift ends the next morning
            end += timedelta(days=1)
        return start, end


def parse_shifts(raw: list[dict[str, Any]]) -> list[Shift]:
    """Shifts from their JSON form ``{"days": [0..6], "start": "HH:MM", "end": ...}``.

    Raises:
        InvalidError: naming the shift that does not parse.
    """
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(
                Shift(
                    days=tuple(int(d) for d in item["days"]),
                    start=time.fromisoformat(item["start"]),
                    end=time.fromisoformat(item["end"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidError(
                f"shift {i}: expected days/start/end, got {item!r:.80}"
            ) from exc
    return out


def on_duty(shifts: list[Shift], local: datetime) -> tuple[datetime, datetime] | None:
    """The shift window ``local`` falls in (yesterday's night shift included)."""
    for shift in shifts:
        for day in (local, local - timedelta(days=1)):
            window = shift.window(day)
            if window and window[0] <= local < window[1]:
                return window
    return None


def attendance(
    inside: list[tuple[datetime, bool]], window: tuple[datetime, datetime]
) -> dict[str, Any]:
    """First and last fix inside the post area during one shift."""
    start, end = window
    hits = [at for at, ok in inside if ok and start <= at < end]
    return {
        "shiftStart": start.isoformat(),
        "shiftEnd": end.isoformat(),
        "firstInside": hits[0].isoformat() if hits else None,
        "lastInside": hits[-1].isoformat() if hits else None,
        "present": bool(hits),
        "lateBy": max(0.0, (hits[0] - start).total_seconds()) if hits else None,
    }
