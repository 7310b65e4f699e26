"""Which fixes to trust and how often to report them.

Pure: a fix, the last trusted fix and the time in; a verdict out. A fix is
refused when the receiver has none, when its HDOP is too poor, when it is
stale (its time is far behind the node's clock), when the receiver only
simulates it (manual input or simulator mode) or when it jumps (the speed
implied by the distance from the last trusted fix is impossible on foot or
in a patrol car). Distances come from pyproj's geodesic, not hand-written
trigonometry. The reporting interval adapts: slow standing, fast moving,
fastest during an SOS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyproj import Geod

if TYPE_CHECKING:
    from datetime import datetime

    from handheld.epoch import Fix

WGS84 = Geod(ellps="WGS84")
SIMULATED_QUALITY = frozenset({7, 8})  # GGA: manual input, simulator mode


@dataclass(frozen=True, slots=True)
class FixLimits:
    """Thresholds of a trusted fix."""

    max_hdop: float = 5.0
    stale_s: float = 10.0
    max_speed_mps: float = 70.0

    def __post_init__(self) -> None:
        if self.max_hdop <= 0 or self.stale_s <= 0 or self.max_speed_mps <= 0:
            raise ValueError(f"expected positive limits, got {self}")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance on WGS84, in metres."""
    _, _, dist = WGS84.inv(lon1, lat1, lon2, lat2)
    return float(dist)


def refuse_fix(
    fix: Fix, last: Fix | None, *, now: datetime, limits: FixLimits
) -> str | None:
    """Return why ``fix`` is not trusted, or None.

    Reasons: ``simulated`` (GGA quality 7 manual input or 8 simulator mode),
    ``hdop``, ``stale`` and ``jump``.
    """
    if fix.quality in SIMULATED_QUALITY:
        return "simulated"
    if fix.hdop is not None and fix.hdop > limits.max_hdop:
        return "hdop"
    if (now - fix.time).total_seconds() > limits.stale_s:
        return "stale"
    if last is not None:
        dt = (fix.time - last.time).total_seconds()
        if dt <= 0:
            return "stale"  # an epoch we already have, or one out of order
        if distance_m(last.lat, last.lon, fix.lat, fix.lon) / dt > limits.max_speed_mps:
            return "jump"
    return None


def report_interval(
    speed_mps: float,
    *,
    sos: bool,
    standing_s: float,
    moving_s: float,
    sos_s: float,
    moving_mps: float,
) -> float:
    """Seconds until the next position report."""
    if sos:
        return sos_s
    return moving_s if speed_mps >= moving_mps else standing_s
