"""Spatial work in a metric projection: nearby officers, beats, distances.

Positions arrive as WGS84 longitude/latitude; everything measured here is in
CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547), which covers 岳阳县,
so distances are in metres and shapely does the geometry (an STRtree for
"who is within R"). Pure: values in, values out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely import Point, Polygon
from shapely.geometry import shape

from central.errors import InvalidError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

METRIC_CRS = "EPSG:4547"


@lru_cache(maxsize=1)
def _to_metric() -> Transformer:
    return Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)


def project(lat: float, lon: float) -> tuple[float, float]:
    """WGS84 → metres (x east, y north)."""
    x, y = _to_metric().transform(lon, lat)
    return float(x), float(y)


def project_many(
    lats: Sequence[float], lons: Sequence[float]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Project many points at once (one pyproj call)."""
    xs, ys = _to_metric().transform(np.asarray(lons), np.asarray(lats))
    return np.asarray(xs), np.asarray(ys)


def _project_array(lonlat: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    xs, ys = _to_metric().transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([xs, ys])


@dataclass(frozen=True, slots=True)
class Located:
    """Someone at a place: a device and its latest trusted position."""

    device: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Nearby:
    """An officer near a point, and how far."""

    device: str
    distance_m: float


def nearest_within(
    lat: float,
    lon: float,
    people: Sequence[Located],
    *,
    radius_m: float,
    limit: int = 20,
    exclude: Iterable[str] = (),
) -> list[Nearby]:
    """The people within ``radius_m`` of a point, nearest first.

    Raises:
        InvalidError: the radius is not positive.
    """
    if radius_m <= 0:
        raise InvalidError(f"expected a positive radius, got {radius_m}")
    skip = set(exclude)
    chosen = [p for p in people if p.device not in skip]
    if not chosen:
        return []
    # One vectorised pass (no geometry objects): an SOS with thousands of
    # officers placed must not spend its budget building a tree for one query.
    xs, ys = project_many([p.lat for p in chosen], [p.lon for p in chosen])
    x, y = project(lat, lon)
    distances = np.hypot(xs - x, ys - y)
    hits = np.flatnonzero(distances <= radius_m)
    ranked = sorted(
        (Nearby(chosen[i].device, round(float(distances[i]), 1)) for i in hits),
        key=lambda n: n.distance_m,
    )
    return ranked[:limit]


def box_around(lat: float, lon: float, radius_m: float) -> tuple[float, ...]:
    """A lat/lon box holding every point within ``radius_m`` (with a margin).

    Returns:
        (south, north, west, east) in degrees, for a cheap pre-filter in SQL.
    """
    dlat = radius_m * 1.1 / 110_574
    dlon = radius_m * 1.1 / (111_320 * max(0.01, math.cos(math.radians(lat))))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


@dataclass(frozen=True, slots=True)
class Area:
    """A beat's polygon in metres, and the same grown by its buffer."""

    polygon: Polygon
    buffered: Polygon

    def inside(self, lat: float, lon: float) -> bool:
        """Inside the beat, counting its buffer (GNSS noise at the edge)."""
        return bool(self.buffered.contains(Point(*project(lat, lon))))

    def strictly_inside(self, lat: float, lon: float) -> bool:
        """Inside the beat itself (attendance counts only this)."""
        return bool(self.polygon.contains(Point(*project(lat, lon))))


def make_area(geometry: dict[str, Any], *, buffer_m: float) -> Area:
    """Build a beat's area from a GeoJSON polygon in lon/lat.

    Raises:
        InvalidError: not a valid polygon, or a negative buffer.
    """
    if buffer_m < 0:
        raise InvalidError(f"expected a buffer of 0 m or more, got {buffer_m}")
    try:
        geom = shape(geometry)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidError(f"expected a GeoJSON Polygon, got {geometry!r:.80}") from exc
    if not isinstance(geom, Polygon) or not geom.is_valid or geom.is_empty:
        raise InvalidError(f"expected a valid GeoJSON Polygon, got {geom.geom_type}")
    metric = shapely.transform(geom, _project_array)
    assert isinstance(metric, Polygon)  # noqa: S101 - transform keeps the type
    return Area(polygon=metric, buffered=metric.buffer(buffer_m))
