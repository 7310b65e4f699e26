"""Reports over stored fixes: stops, summary, shifts and attendance."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from central.police.reports import (
    Shift,
    Track,
    attendance,
    on_duty,
    parse_shifts,
    stops,
    summary,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday, 08:00 in 岳阳
TZ = ZoneInfo("Asia/Shanghai")


def track(points: Sequence[tuple[float, float, float]]) -> list[Track]:
    return [
        Track(at=T0 + timedelta(seconds=t), lat=0, lon=0, x=x, y=y, speed_mps=1.0)
        for t, x, y in points
    ]


def test_stops_and_summary() -> None:
    walk = [(t, t * 1.0, 0.0) for t in range(0, 100, 10)]  # 90 m in 90 s
    stay = [(100 + t, 90.0 + (t % 3), 0.0) for t in range(0, 600, 30)]  # 10 min at x=90
    fixes = track(walk + stay)
    found = stops(fixes, min_s=300)
    assert len(found) == 1
    assert found[0]["duration"] >= 570
    s = summary(fixes)
    assert s["fixes"] == len(fixes)
    assert s["distance"] >= 90
    assert s["maxSpeed"] == 1.0
    assert summary([])["distance"] == 0.0


def test_day_and_night_shifts() -> None:
    shifts = parse_shifts(
        [
            {"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "16:00"},
            {"days": [0], "start": "22:00", "end": "06:00"},
        ]
    )
    monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=TZ)
    assert on_duty(shifts, monday_9) == (
        monday_9.replace(hour=8),
        monday_9.replace(hour=16),
    )
    tuesday_3 = datetime(2026, 12, 1, 3, 0, tzinfo=TZ)
    window = on_duty(shifts, tuesday_3)
    assert window is not None
    assert window[0] == datetime(2026, 11, 30, 22, 0, tzinfo=TZ)
    assert on_duty(shifts, datetime(2026, 12, 5, 9, 0, tzinfo=TZ)) is None  # Saturday
    with pytest.raises(ValueError, match="shift 0"):
        parse_shifts([{"days": [9], "start": "08:00", "end": "16:00"}])
    with pytest.raises(ValueError, match="shift 0"):
        parse_shifts([{"start": "08:00"}])
    assert (
        Shift(days=(0,), start=time(8), end=time(16)).window(
            datetime(2026, 12, 1, tzinfo=TZ)
        )
        is None
    )


def test_attendance_first_and_last_inside() -> None:
    start = datetime(2026, 11, 30, 8, 0, tzinfo=TZ)
    end = start + timedelta(hours=8)
    marks = [
        (start - timedelta(minutes=5), True),  # before the shift: not counted
        (start + timedelta(minutes=7), False),
        (start + timedelta(minutes=12), True),
        (start + timedelta(hours=7), True),
        (end + timedelta(minutes=1), True),
    ]
    row = attendance(marks, (start, end))
    assert row["firstInside"] == (start + timedelta(minutes=12)).isoformat()
    assert row["lastInside"] == (start + timedelta(hours=7)).isoformat()
    assert row["lateBy"] == 720
    assert attendance([], (start, end))["present"] is False
