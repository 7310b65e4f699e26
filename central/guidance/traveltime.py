"""Link travel times per minute: robust camera estimates, loop estimates, fusion (pure).

Camera trips (:class:`~central.guidance.reid.Trip`) are grouped by the
minute they **arrive** at the downstream camera (the time the figure is
known). Stops, detours and false matches are removed with a Hampel
identifier over a sliding window: a trip is kept when it lies within
``k`` scaled median absolute deviations of the window's median (Hampel
1974; for AVI travel times see Dion & Rakha 2006, "Estimating dynamic
roadway travel times using automatic vehicle identification data for low
sampling rates", Transportation Research Part B 40(9), whose validity
window is the same idea with a smoothed centre). The minute's figure is the
mean of its kept trips, or of the window's when the minute has too few.

Where a link has no cameras, its loops' speeds give ``length / speed``
(:func:`loop_estimate`), which misses the waiting at red and is therefore
trusted less; :func:`fuse` weighs the two by their variances and states a
confidence. Storage and the clock are the service's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from central.guidance.reid import Trip

MAD_SCALE = 1.4826  # MAD of a normal sample → its standard deviation
LOOP_CV = 0.35  # a loop estimate's relative error on a signalised arterial


@dataclass(frozen=True, slots=True)
class Estimate:
    """A travel time, its spread and how many observations made it."""

    seconds: float
    sd: float
    samples: int
    source: str  # camera | loops | fused

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ValueError(f"expected a positive travel time, got {self.seconds}")
        if self.sd < 0 or self.samples < 0:
            raise ValueError(
                f"expected sd, samples >= 0, got {self.sd}, {self.samples}"
            )

    @property
    def confidence(self) -> float:
        """0..1: how far the figure can be trusted (1 − 2·its relative error)."""
        error = self.sd / math.sqrt(max(self.samples, 1)) / self.seconds
        return round(max(0.0, min(1.0, 1.0 - 2.0 * error)), 3)


@dataclass(frozen=True, slots=True)
class Rules:
    """How camera trips become a minute's figure."""

    window_min: int = 5  # minutes of trips the outlier bounds are drawn from
    k: float = 3.0  # Hampel's threshold, in scaled MADs
    min_samples: int = 3  # fewer in the minute: the window's kept trips
    mad_floor: float = 0.05  # the MAD is at least this share of the median
    # A minute further than this factor from the last figure needs twice
    # min_samples trips: a few vehicles that stopped on the way, all
    # arriving together, are not a change of traffic.
    jump: float = 2.0

    def __post_init__(self) -> None:
        if self.window_min < 1 or self.k <= 0 or self.min_samples < 1:
            raise ValueError(
                f"expected window_min >= 1, k > 0, min_samples >= 1, got "
                f"{self.window_min}, {self.k}, {self.min_samples}"
            )


def minute_of(at: datetime) -> datetime:
    """The start of the minute ``at`` falls in."""
    return at.replace(second=0, microsecond=0)


def hampel_keep(values: Sequence[float], *, k: float, mad_floor: float) -> list[bool]:
    """Which values lie within ``k`` scaled MADs of the median."""
    if not values:
        return []
    centre = statistics.median(values)
    mad = statistics.median(abs(v - centre) for v in values)
    scale = MAD_SCALE * max(mad, mad_floor * centre)
    return [abs(v - centre) <= k * scale for v in values]


def robust_estimate(
    minute: Sequence[float], window: Sequence[float], *, rules: Rules
) -> Estimate | None:
    """The minute's travel time from its trips, outliers drawn from the window.

    Args:
        minute: trip times (s) arriving in the minute.
        window: trip times (s) of the window, the minute's included.
        rules: the filter's parameters.

    Returns:
        The estimate, or None when the window keeps no trip.
    """
    keep = hampel_keep(window, k=rules.k, mad_floor=rules.mad_floor)
    kept = [v for v, ok in zip(window, keep, strict=True) if ok]
    if not kept:
        return None
    low, high = min(kept), max(kept)
    own = [v for v in minute if low <= v <= high]
    used = own if len(own) >= rules.min_samples else kept
    sd = statistics.pstdev(used) if len(used) > 1 else 0.2 * used[0]
    return Estimate(
        seconds=statistics.fmean(used), sd=sd, samples=len(used), source="camera"
    )


def minute_series(
    trips: Sequence[Trip], *, rules: Rules | None = None
) -> dict[datetime, Estimate]:
    """Per-minute estimates over every minute some trip arrived in.

    Args:
        trips: matched trips of one link, any order.
        rules: the filter's parameters (defaults: :class:`Rules`).

    Returns:
        Minute start → estimate; a minute with only a few trips far from
        the last figure (vehicles that stopped on the way) has none.
    """
    rules = rules or Rules()
    by_minute: dict[datetime, list[float]] = {}
    for trip in trips:
        by_minute.setdefault(minute_of(trip.exited), []).append(trip.seconds)
    out: dict[datetime, Estimate] = {}
    last: Estimate | None = None
    for minute in sorted(by_minute):
        window = [
            v
            for back in range(rules.window_min)
            for v in by_minute.get(minute - timedelta(minutes=back), [])
        ]
        estimate = robust_estimate(by_minute[minute], window, rules=rules)
        if estimate is None:
            continue
        thin = estimate.samples < 2 * rules.min_samples
        if thin and last is not None:
            ratio = estimate.seconds / last.seconds
            if not 1 / rules.jump <= ratio <= rules.jump:
                continue
        out[minute] = last = estimate
    return out


def loop_estimate(
    *, length_m: float, speeds_kmh: Sequence[float], free_flow_s: float
) -> Estimate | None:
    """A link's travel time from its loops' mean speeds (harmonic mean).

    Args:
        length_m: the link's length.
        speeds_kmh: the mean speed of each loop station on the link this
            minute (stations that counted nothing left out).
        free_flow_s: the time at the speed limit plus the usual waiting at
            red; never less than this.

    Returns:
        The estimate, or None without a speed.
    """
    usable = [s for s in speeds_kmh if s > 0]
    if not usable or length_m <= 0:
        return None
    speed = statistics.harmonic_mean(usable) / 3.6
    seconds = max(length_m / speed, free_flow_s)
    return Estimate(
        seconds=seconds, sd=LOOP_CV * seconds, samples=len(usable), source="loops"
    )


def fuse(camera: Estimate | None, loops: Estimate | None) -> Estimate | None:
    """The inverse-variance weighted figure of the two (either may be missing)."""
    if camera is None or loops is None:
        return camera or loops
    var_c = (camera.sd**2) / max(camera.samples, 1) or 1e-6
    var_l = (loops.sd**2) / max(loops.samples, 1) or 1e-6
    w_c, w_l = 1 / var_c, 1 / var_l
    seconds = (w_c * camera.seconds + w_l * loops.seconds) / (w_c + w_l)
    sd = math.sqrt(1 / (w_c + w_l))
    return Estimate(seconds=seconds, sd=sd, samples=1, source="fused")
