"""Bins and diagnostics from detector polls (pure).

:class:`Binner` turns successive card readings into **1-minute bins**
(aligned to the clock) and **15-minute bins** per lane, with the usual
derived figures: flow (veh/h), occupancy (% of time a vehicle was over the
detector), mean speed where the sensor gives one, and mean headway.

:class:`Diagnoser` watches each lane for the classic detector failures:
**stuck on** (presence without a break for ``stuck_on_s``), **stuck off**
(no vehicle for ``stuck_off_s`` while the other lanes count), and
**chattering** (more counts than traffic can make: over ``max_per_s`` in
one poll). Each raise and each clear is reported once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loop_detector.registers import CardReading, diff32


@dataclass
class _Acc:
    count: int = 0
    occupied_ms: int = 0
    speed_sum: float = 0.0
    speeds: int = 0

    def add(self, other: _Acc) -> None:
        self.count += other.count
        self.occupied_ms += other.occupied_ms
        self.speed_sum += other.speed_sum
        self.speeds += other.speeds

    def figures(self, lane: int, seconds: float) -> dict[str, Any]:
        return {
            "lane": lane,
            "count": self.count,
            "flow_vph": round(self.count * 3600 / seconds),
            "occupancy_pct": round(100 * self.occupied_ms / (seconds * 1000), 1),
            "speed_kmh": round(self.speed_sum / self.speeds, 1)
            if self.speeds
            else None,
            "headway_s": round(seconds / self.count, 1) if self.count else None,
        }


@dataclass
class Binner:
    """1-minute and 15-minute bins per lane."""

    minute: datetime | None = None
    current: dict[int, _Acc] = field(default_factory=dict)
    quarter: dict[int, _Acc] = field(default_factory=dict)
    quarter_start: datetime | None = None
    quarter_minutes: int = 0

    def add(
        self, old: CardReading, new: CardReading, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        """Take one poll; return finished bins as (event type, body)."""
        out: list[tuple[str, dict[str, Any]]] = []
        start = now.replace(second=0, microsecond=0)
        if self.minute is not None and start != self.minute:
            out += self._close_minute()
        if self.minute is None or start != self.minute:
            self.minute = start
        for lane, (a, b) in enumerate(zip(old.lanes, new.lanes, strict=False), start=1):
            acc = self.current.setdefault(lane, _Acc())
            n = diff32(b.count, a.count)
            acc.count += n
            acc.occupied_ms += diff32(b.occupied_ms, a.occupied_ms)
            if n and b.speed_kmh is not None:
                acc.speed_sum += b.speed_kmh * n
                acc.speeds += n
        return out

    def _close_minute(self) -> list[tuple[str, dict[str, Any]]]:
        assert self.minute is not None  # noqa: S101 - only called with a minute open
        body = {
            "start": self.minute.isoformat(),
            "seconds": 60,
            "lanes": [
                acc.figures(lane, 60) for lane, acc in sorted(self.current.items())
            ],
        }
        out = [("detector", body)]
        q_start = self.minute.replace(minute=self.minute.minute // 15 * 15)
        if self.quarter_start is not None and q_start != self.quarter_start:
            self.quarter, self.quarter_minutes = {}, 0
        self.quarter_start = q_start
        for lane, acc in self.current.items():
            self.quarter.setdefault(lane, _Acc()).add(acc)
        self.quarter_minutes += 1
        if self.minute + timedelta(minutes=1) == q_start + timedelta(minutes=15):
            seconds = 60 * self.quarter_minutes
            out.append(
                (
                    "detector_15m",
                    {
                        "start": q_start.isoformat(),
                        "seconds": seconds,
                        "lanes": [
                            acc.figures(lane, seconds)
                            for lane, acc in sorted(self.quarter.items())
                        ],
                    },
                )
            )
            self.quarter, self.quarter_minutes = {}, 0
        self.current = {}
        return out


@dataclass
class Diagnoser:
    """Stuck on, stuck off, chattering — per lane, raised and cleared once."""

    stuck_on_s: float = 180.0
    stuck_off_s: float = 1800.0
    max_per_s: float = 2.0
    chatter_hold_s: float = 60.0
    present_since: dict[int, float] = field(default_factory=dict)
    chatter_until: dict[int, float] = field(default_factory=dict)
    last_count: dict[int, float] = field(default_factory=dict)
    active: set[tuple[str, int]] = field(default_factory=set)

    def check(
        self, old: CardReading, new: CardReading, t: float, dt: float
    ) -> list[dict[str, Any]]:
        """Faults raised or cleared by this poll (``t`` monotonic seconds)."""
        found: set[tuple[str, int]] = set()
        counted_elsewhere: dict[int, bool] = {}
        counts = {
            lane: diff32(b.count, a.count)
            for lane, (a, b) in enumerate(zip(old.lanes, new.lanes, strict=False), 1)
        }
        for lane, reading in enumerate(new.lanes, start=1):
            if reading.presence:
                self.present_since.setdefault(lane, t)
                if t - self.present_since[lane] >= self.stuck_on_s:
                    found.add(("stuck_on", lane))
            else:
                self.present_since.pop(lane, None)
            if counts.get(lane):
                self.last_count[lane] = t
            self.last_count.setdefault(lane, t)
            counted_elsewhere[lane] = any(
                self.last_count.get(o, 0) > self.last_count[lane]
                for o in counts
                if o != lane
            )
            if (
                t - self.last_count[lane] >= self.stuck_off_s
                and counted_elsewhere[lane]
            ):
                found.add(("stuck_off", lane))
            if dt > 0 and counts.get(lane, 0) / dt > self.max_per_s:
                self.chatter_until[lane] = t + self.chatter_hold_s
            if t < self.chatter_until.get(lane, -1.0):
                found.add(("chattering", lane))
            if reading.fault_bits:
                found.add(("lane_fault", lane))
        changes = [
            {"code": code, "lane": lane, "active": True}
            for code, lane in sorted(found - self.active)
        ]
        changes += [
            {"code": code, "lane": lane, "active": False}
            for code, lane in sorted(self.active - found)
        ]
        self.active = found
        return changes
