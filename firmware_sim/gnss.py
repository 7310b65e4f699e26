"""A GNSS receiver on a pty: NMEA 0183 (GPS and BeiDou) replaying a route.

The handheld opens the pty's slave end as its serial port, exactly as it
opens ``/dev/ttyAMA0`` on a Pi. Routes walk or drive along the roads of the
synthetic 荣家湾 map that central's console draws; each epoch writes an RMC
and a GGA (talkers ``GN``, ``BD``/``GB`` or ``GP``) with realistic noise:
metre-level jitter, occasional poor fixes (high HDOP, tens of metres off),
dropouts (the receiver says nothing for a while) and, rarely, a line with a
broken checksum.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import tty
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from typing import TYPE_CHECKING

import pynmea2
from pyproj import Transformer

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

logger = logging.getLogger(__name__)

MPS_KNOT = 1 / 0.514444


@lru_cache(maxsize=1)
def _transformers() -> tuple[Transformer, Transformer]:
    fwd = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    back = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    return fwd, back


def load_map() -> dict[str, object]:
    """The synthetic 荣家湾 map (GeoJSON) shipped with central's console."""
    text = (
        resources.files("central")
        .joinpath("console/map/rongjiawan.geojson")
        .read_text(encoding="utf-8")
    )
    data: dict[str, object] = json.loads(text)
    return data


def road(name: str) -> list[tuple[float, float]]:
    """The (lon, lat) vertices of a named road on the map.

    Raises:
        KeyError: no road of that name.
    """
    features = load_map()["features"]
    assert isinstance(features, list)  # noqa: S101 - our own file
    for feature in features:
        props = feature["properties"]
        if props.get("kind") == "road" and props.get("name") == name:
            return [(float(x), float(y)) for x, y in feature["geometry"]["coordinates"]]
    raise KeyError(f"no road {name!r} on the map")


@dataclass(frozen=True, slots=True)
class Route:
    """A polyline to follow at a speed, back and forth."""

    points: tuple[tuple[float, float], ...]  # (lon, lat)
    speed_mps: float

    def __post_init__(self) -> None:
        if len(self.points) < 1 or self.speed_mps < 0:
            raise ValueError(f"expected points and a speed >= 0, got {self}")

    def position(self, t: float) -> tuple[float, float, float]:
        """(lat, lon, course) ``t`` seconds after the start."""
        fwd, back = _transformers()
        xy = [fwd.transform(lon, lat) for lon, lat in self.points]
        legs = [math.dist(a, b) for a, b in pairwise(xy)]
        total = sum(legs)
        if total == 0 or self.speed_mps == 0:
            lon, lat = self.points[0]
            return lat, lon, 0.0
        along = (t * self.speed_mps) % (2 * total)
        forward = along <= total
        along = along if forward else 2 * total - along
        for (a, b), leg in zip(pairwise(xy), legs, strict=True):
            if along <= leg and leg > 0:
                f = along / leg
                x, y = a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
                dx, dy = (
                    (b[0] - a[0], b[1] - a[1])
                    if forward
                    else (a[0] - b[0], a[1] - b[1])
                )
                lon, lat = back.transform(x, y)
                return lat, lon, math.degrees(math.atan2(dx, dy)) % 360
            along -= leg
        lon, lat = self.points[-1]
        return lat, lon, 0.0


def walking(name: str = "建设路") -> Route:
    """An officer on foot along a road (1.4 m/s)."""
    return Route(points=tuple(road(name)), speed_mps=1.4)


def driving(name: str = "环城路") -> Route:
    """A patrol car along a road (10 m/s)."""
    return Route(points=tuple(road(name)), speed_mps=10.0)


@dataclass(frozen=True, slots=True)
class Noise:
    """How imperfect the receiver is."""

    jitter_m: float = 3.0
    poor_rate: float = 0.03  # share of epochs with a poor fix
    dropout_rate: float = 0.005  # chance per epoch that a dropout begins
    dropout_s: float = 8.0
    corrupt_rate: float = 0.005  # lines with a broken checksum


def _nmea_coord(value: float, *, lat: bool) -> tuple[str, str]:
    hemi = ("N" if value >= 0 else "S") if lat else ("E" if value >= 0 else "W")
    value = abs(value)
    deg = int(value)
    minutes = (value - deg) * 60
    return (f"{deg:02d}{minutes:07.4f}" if lat else f"{deg:03d}{minutes:07.4f}"), hemi


def sentences(
    *,
    at: datetime,
    lat: float,
    lon: float,
    speed_mps: float,
    course: float,
    hdop: float,
    sats: int,
    talker: str = "GN",
) -> list[str]:
    """One epoch: RMC then GGA, with checksums."""
    la, ns = _nmea_coord(lat, lat=True)
    lo, ew = _nmea_coord(lon, lat=False)
    hhmmss = at.strftime("%H%M%S.") + f"{at.microsecond // 10000:02d}"
    rmc = pynmea2.RMC(
        talker,
        "RMC",
        (
            hhmmss,
            "A",
            la,
            ns,
            lo,
            ew,
            f"{speed_mps * MPS_KNOT:.2f}",
            f"{course:.1f}",
            at.strftime("%d%m%y"),
            "",
            "",
            "A",
        ),
    )
    gga = pynmea2.GGA(
        talker,
        "GGA",
        (
            hhmmss,
            la,
            ns,
            lo,
            ew,
            "1",
            f"{sats:02d}",
            f"{hdop:.2f}",
            "45.0",
            "M",
            "-12.0",
            "M",
            "",
            "",
        ),
    )
    return [str(rmc), str(gga)]


class GnssSimulator:
    """Writes a route's epochs to a file descriptor once a second."""

    def __init__(
        self,
        route: Route,
        *,
        noise: Noise | None = None,
        talker: str = "GN",
        seed: int | None = None,
        now: Callable[[], datetime] | None = None,
        rate_hz: float = 1.0,
    ) -> None:
        self.route = route
        self.noise = noise or Noise()
        self.talker = talker
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self.now = now or (lambda: datetime.now(UTC))
        self.period = 1.0 / rate_hz
        self._t = 0.0
        self._silent_until = -1.0
        self.hold: tuple[float, float] | None = None  # stand still here (lat, lon)

    def epoch(self) -> list[str]:
        """The lines of the next epoch (empty during a dropout)."""
        t = self._t
        self._t += self.period
        n = self.noise
        if t < self._silent_until:
            return []
        if self.rng.random() < n.dropout_rate:
            self._silent_until = t + n.dropout_s
            return []
        if self.hold is not None:
            lat, lon, course, speed = *self.hold, 0.0, 0.0
        else:
            lat, lon, course = self.route.position(t)
            speed = self.route.speed_mps
        poor = self.rng.random() < n.poor_rate
        err = n.jitter_m * (15 if poor else 1)
        fwd, back = _transformers()
        x, y = fwd.transform(lon, lat)
        lon, lat = back.transform(
            x + self.rng.gauss(0, err), y + self.rng.gauss(0, err)
        )
        lines = sentences(
            at=self.now(),
            lat=lat,
            lon=lon,
            speed_mps=speed,
            course=course,
            hdop=self.rng.uniform(6, 12) if poor else self.rng.uniform(0.7, 1.6),
            sats=self.rng.randint(4, 6) if poor else self.rng.randint(9, 24),
            talker=self.talker,
        )
        if self.rng.random() < n.corrupt_rate:
            lines[1] = lines[1][:-2] + ("00" if lines[1][-2:] != "00" else "01")
        return lines

    def run(self, fd: int, stop: threading.Event) -> None:
        """Write epochs to ``fd`` until ``stop`` is set."""
        while not stop.is_set():
            data = "".join(line + "\r\n" for line in self.epoch()).encode("ascii")
            if data:
                try:
                    os.write(fd, data)
                except BlockingIOError:
                    pass  # nobody reads the pty yet: the receiver talks anyway
                except OSError as exc:
                    logger.warning("GNSS simulator stopped writing: %s", exc)
                    return
            stop.wait(self.period)


@dataclass(frozen=True, slots=True)
class Pty:
    """A pty pair in raw mode: the simulator writes ``master``; nodes open ``path``."""

    master: int
    slave: int  # kept open so writes never fail before the node opens it
    path: str

    def close(self) -> None:
        """Close both ends."""
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_pty() -> Pty:
    """Open a raw pty pair for a simulated serial device."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return Pty(master=master, slave=slave, path=os.ttyname(slave))
