from datetime import UTC, datetime

import pytest

from edge import ManualClock, SystemClock


def test_manual_clock_moves_only_when_told() -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    clock = ManualClock(start)
    clock.advance(90)
    assert clock.now() == datetime(2026, 10, 1, 0, 1, 30, tzinfo=UTC)
    assert clock.monotonic() == 90
    with pytest.raises(ValueError, match="seconds >= 0"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 10, 1))  # noqa: DTZ001


def test_system_clock_is_utc() -> None:
    clock = SystemClock()
    assert clock.now().tzinfo is UTC
    assert clock.monotonic() <= clock.monotonic()
