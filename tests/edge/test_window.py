"""Maintenance windows: peak hours (across midnight too)."""

from __future__ import annotations

from datetime import datetime

import pytest

from edge.ota.window import in_windows, parse_window

PEAKS = ["07:00-09:30", "17:00-19:30", "23:00-01:00"]


@pytest.mark.parametrize(
    ("hhmm", "window"),
    [
        ("08:15", "07:00-09:30"),
        ("09:30", None),
        ("18:00", "17:00-19:30"),
        ("23:30", "23:00-01:00"),
        ("00:30", "23:00-01:00"),
        ("03:00", None),
    ],
)
def test_peak_hours(hhmm: str, window: str | None) -> None:
    local = datetime.fromisoformat(f"2026-11-30T{hhmm}:00+08:00")
    assert in_windows(local, PEAKS) == window


def test_bad_windows_are_named() -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_window("morning")
