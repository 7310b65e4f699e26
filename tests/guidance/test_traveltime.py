"""Re-identification and travel times on generated reads with misreads and outliers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from central.guidance import reid, traveltime
from central.guidance.reid import Passage

T0 = datetime(2026, 12, 5, 8, tzinfo=UTC)
KEY = reid.plate_key(b"s" * 32, day="2026-12-05")


def _reads(
    seed: int, *, n: int, miss: float, misread: float, stops: int
) -> tuple[list[Passage], list[Passage], dict[datetime, list[float]]]:
    """Vehicles through a link: true times ~120 s, some stop for 15 minutes."""
    rng = random.Random(seed)
    origin: list[Passage] = []
    dest: list[Passage] = []
    truth: dict[datetime, list[float]] = {}
    for i in range(n):
        plate = f"湘F{i:05d}"
        entered = T0 + timedelta(seconds=rng.uniform(0, 3600))
        seconds = rng.gauss(120, 12) + (900 if i < stops else 0)
        exited = entered + timedelta(seconds=seconds)
        if i >= stops:
            truth.setdefault(traveltime.minute_of(exited), []).append(seconds)
        for camera, at, out in (("cam-a", entered, origin), ("cam-b", exited, dest)):
            if rng.random() < miss:
                continue
            text = plate if rng.random() >= misread else plate[:-1] + "X"
            out.append(Passage(camera, reid.hash_plate(KEY, text), at))
    return origin, dest, truth


def test_hashes_are_keyed_per_day_and_never_the_plate() -> None:
    other_day = reid.plate_key(b"s" * 32, day="2026-12-06")
    h = reid.hash_plate(KEY, "湘F12345")
    assert h == reid.hash_plate(KEY, " 湘f12345 ")
    assert h != reid.hash_plate(other_day, "湘F12345")
    assert "12345" not in h
    assert len(h) == reid.HASH_CHARS
    with pytest.raises(ValueError, match="32"):
        reid.plate_key(b"short", day="2026-12-05")


def test_matching_takes_the_latest_origin_read_and_each_read_once() -> None:
    h = reid.hash_plate(KEY, "湘F12345")
    origin = [
        Passage("a", h, T0),
        Passage("a", h, T0 + timedelta(seconds=30)),  # read twice at the origin
    ]
    dest = [
        Passage("b", h, T0 + timedelta(seconds=150)),
        Passage("b", h, T0 + timedelta(seconds=160)),  # and twice at the end
    ]
    trips = reid.match_passages(origin, dest, max_s=600)
    assert [t.seconds for t in trips] == [120.0]
    late = [Passage("b", h, T0 + timedelta(seconds=3600))]
    assert reid.match_passages(origin, late, max_s=600) == []


def test_minute_travel_times_are_within_ten_per_cent_despite_misreads_and_stops() -> (
    None
):
    origin, dest, truth = _reads(1, n=1200, miss=0.1, misread=0.05, stops=30)
    trips = reid.match_passages(origin, dest, max_s=1800, min_s=30)
    assert any(t.seconds > 900 for t in trips)  # the stops were matched...
    series = traveltime.minute_series(trips)
    errors = [
        abs(series[m].seconds - sum(v) / len(v)) / (sum(v) / len(v))
        for m, v in truth.items()
        if m in series
    ]
    assert len(errors) > 50
    assert sum(errors) / len(errors) < 0.10  # ...and filtered out
    assert max(e.seconds for e in series.values()) < 200


def test_loops_alone_and_fused() -> None:
    loops = traveltime.loop_estimate(length_m=350, speeds_kmh=[30, 40], free_flow_s=30)
    assert loops is not None
    assert loops.seconds == pytest.approx(350 / (34.2857 / 3.6), rel=1e-3)
    assert traveltime.loop_estimate(length_m=350, speeds_kmh=[], free_flow_s=1) is None
    camera = traveltime.Estimate(seconds=60, sd=6, samples=16, source="camera")
    fused = traveltime.fuse(camera, loops)
    assert fused is not None
    assert loops.seconds < fused.seconds < camera.seconds
    assert camera.seconds - fused.seconds < 2  # sixteen trips outweigh two loops
    assert fused.confidence >= camera.confidence > loops.confidence
    assert traveltime.fuse(None, loops) is loops
