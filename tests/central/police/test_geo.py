"""Nearby officers and beat areas, in metres (EPSG:4547)."""

from __future__ import annotations

import math

import pytest

from central.police.geo import Located, make_area, nearest_within, project

LAT, LON = 29.145, 113.118
M_LAT = 1 / 110_850  # degrees of latitude per metre near 29°N


def test_nearest_within_ranks_by_distance_and_excludes() -> None:
    people = [
        Located("far", LAT + 3000 * M_LAT, LON),
        Located("near", LAT + 100 * M_LAT, LON),
        Located("mid", LAT - 900 * M_LAT, LON),
        Located("me", LAT, LON),
    ]
    hits = nearest_within(LAT, LON, people, radius_m=2000, exclude={"me"})
    assert [h.device for h in hits] == ["near", "mid"]
    assert hits[0].distance_m == pytest.approx(100, abs=2)
    assert hits[1].distance_m == pytest.approx(900, abs=5)
    assert nearest_within(LAT, LON, [], radius_m=10) == []
    with pytest.raises(ValueError, match="positive radius"):
        nearest_within(LAT, LON, people, radius_m=0)


def test_limit_keeps_the_nearest() -> None:
    people = [Located(f"o{i}", LAT + i * 10 * M_LAT, LON) for i in range(1, 50)]
    hits = nearest_within(LAT, LON, people, radius_m=2000, limit=3)
    assert [h.device for h in hits] == ["o1", "o2", "o3"]


def square(half_m: float) -> dict[str, object]:
    d_lat, d_lon = half_m * M_LAT, half_m / 97_300
    ring = [
        [LON - d_lon, LAT - d_lat],
        [LON + d_lon, LAT - d_lat],
        [LON + d_lon, LAT + d_lat],
        [LON - d_lon, LAT + d_lat],
        [LON - d_lon, LAT - d_lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def test_area_buffer_counts_the_edge() -> None:
    area = make_area(square(500), buffer_m=30)
    just_out = LAT + 515 * M_LAT
    assert area.inside(just_out, LON)
    assert not area.strictly_inside(just_out, LON)
    assert not area.inside(LAT + 600 * M_LAT, LON)


@pytest.mark.parametrize(
    "geometry",
    [{"type": "Point", "coordinates": [113, 29]}, {"type": "Polygon"}, {"nonsense": 1}],
)
def test_bad_geometry_is_named(geometry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Polygon"):
        make_area(geometry, buffer_m=10)


def test_projection_is_metric() -> None:
    x0, y0 = project(LAT, LON)
    x1, y1 = project(LAT + 1000 * M_LAT, LON)
    # Gauss-Kruger grid north leans a little from true north away from 114°E.
    assert math.hypot(x1 - x0, y1 - y0) == pytest.approx(1000, abs=2)
