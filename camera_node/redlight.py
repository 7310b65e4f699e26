"""Red-light violations: a plate that crosses the stop line on red.

Pure: per frame, where each tracked plate is (the bottom of its box, in
image rows; vehicles come towards the camera, so rows grow) and what the
signal group of the lane shows; out, the crossings made on red, after a
short grace (a vehicle already over the line when the red began is not a
violation). The frames kept for evidence are chosen here: the last one
before the line and the first one at or past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Signal:
    """What the lane's signal group shows and since when."""

    state: str  # "red", "yellow", "green", "flash", "dark"
    since: datetime


@dataclass(frozen=True, slots=True)
class Crossing:
    """A plate that went over the stop line on red."""

    text: str
    before_at: datetime
    at_line_at: datetime
    red_since: datetime


@dataclass
class LineWatch:
    """Where each plate was last, to see it cross the line."""

    stop_line_y: float
    grace: timedelta = timedelta(seconds=0.5)

    def __post_init__(self) -> None:
        self._last: dict[str, tuple[float, datetime]] = {}

    def observe(
        self, text: str, bottom_y: float, at: datetime, signal: Signal | None
    ) -> Crossing | None:
        """Take one sighting; return a crossing if this frame made one on red."""
        last = self._last.get(text)
        self._last[text] = (bottom_y, at)
        if last is None or signal is None or signal.state != "red":
            return None
        before_y, before_at = last
        crossed = before_y < self.stop_line_y <= bottom_y
        if crossed and before_at >= signal.since + self.grace:
            return Crossing(
                text=text, before_at=before_at, at_line_at=at, red_since=signal.since
            )
        return None

    def forget_before(self, cutoff: datetime) -> None:
        """Drop plates not seen since ``cutoff``."""
        self._last = {k: v for k, v in self._last.items() if v[1] >= cutoff}
