"""Crossing the stop line on red, and only then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from camera_node.redlight import LineWatch, Signal

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_crossing_on_red_is_caught_with_its_frames() -> None:
    watch = LineWatch(stop_line_y=300)
    red = Signal("red", at(0))
    assert watch.observe("湘F12345", 250, at(1.0), red) is None
    crossing = watch.observe("湘F12345", 320, at(1.2), red)
    assert crossing is not None
    assert crossing.before_at == at(1.0)
    assert crossing.at_line_at == at(1.2)
    assert crossing.red_since == at(0)


def test_green_yellow_grace_and_already_over_are_not_violations() -> None:
    watch = LineWatch(stop_line_y=300)
    assert watch.observe("A", 250, at(1), Signal("green", at(0))) is None
    assert watch.observe("A", 320, at(2), Signal("green", at(0))) is None
    assert watch.observe("B", 250, at(1), Signal("yellow", at(0))) is None
    assert watch.observe("B", 320, at(2), Signal("yellow", at(0))) is None
    # Red began while the vehicle was already committed (within the grace).
    assert watch.observe("C", 250, at(10.1), Signal("red", at(10))) is None
    assert watch.observe("C", 320, at(10.4), Signal("red", at(10))) is None
    # Already past the line when seen first: no crossing was seen.
    assert watch.observe("D", 350, at(20), Signal("red", at(0))) is None
    assert watch.observe("D", 400, at(21), Signal("red", at(0))) is None
    # No signal known: nothing is claimed.
    assert watch.observe("E", 250, at(1), None) is None
    assert watch.observe("E", 320, at(2), None) is None
    watch.forget_before(at(100))
    assert watch.observe("A", 320, at(101), Signal("red", at(0))) is None
