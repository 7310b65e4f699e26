"""A GNSS receiver on a pty: NMEA 0183 (GPS and BeiDou) replaying a route.

The handheld opens the pty's slave end as its serial port, exactly as it
opens ``/dev/ttyAMA0`` on a Pi. Routes walk or drive along the roads of the
synthetic 荣家湾 map that central's console draws; each epoch writes an RMC
and a GGA (talkers ``GN``, ``BD``/``GB`` or ``GP``) with realistic noise:
metre-level jitter, occasional poor fixes (high HDOP, tens of metres off),
dropouts (the receiver says nothing for a while) and, rarely, a line with a
broken checksum. A ``receiver`` style makes it talk like a model the county
buys: ``ublox-dual`` (a UBX-NAV-PVT binary frame before the sentences, no
line break between, as a ZED-F9P in UBX+NMEA mode), ``teseo`` (``$$``
prefixes, as ST Teseo), ``rmc-only``, ``gga-zda`` (GGA and ZDA, no RMC) or
``plain`` (RMC and GGA, the default).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import struct
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
RECEIVERS = ("plain", "ublox-dual", "teseo", "rmc-only", "gga-zda")


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


def nav_pvt(*, at: datetime, lat: float, lon: float, sats: int) -> bytes:
    """A UBX-NAV-PVT frame (u-blox M8/F9 interface description, class 01 id 07).

    92-byte payload, little-endian: iTOW, UTC date and time, validity, fix
    type 3 (3D), satellites, lon/lat in 1e-7 degrees; the rest zero. Framed as
    ``B5 62``, class, id, length, payload, then the 8-bit Fletcher checksum
    over class..payload.
    """
    payload = bytearray(92)
    itow = (at.weekday() + 1) % 7 * 86_400_000 + (
        at.hour * 3600 + at.minute * 60 + at.second
    ) * 1000
    struct.pack_into(
        "<IHBBBBBB", payload, 0, itow, at.year, at.month, at.day,
        at.hour, at.minute, at.second, 0x07,
    )  # fmt: skip
    payload[20], payload[23] = 3, sats
    struct.pack_into("<ii", payload, 24, round(lon * 1e7), round(lat * 1e7))
    body = bytes([0x01, 0x07]) + struct.pack("<H", len(payload)) + payload
    ck_a = ck_b = 0
    for byte in body:
        ck_a = (ck_a + byte) & 0xFF
        ck_b = (ck_b + ck_a) & 0xFF
    return b"\xb5\x62" + body + bytes([ck_a, ck_b])


def zda(at: datetime, talker: str = "GN") -> str:
    """A ZDA sentence (time and date) with its checksum."""
    hhmmss = at.strftime("%H%M%S.") + f"{at.microsecond // 10000:02d}"
    fields = (hhmmss, f"{at.day:02d}", f"{at.month:02d}", f"{at.year:04d}", "00", "00")
    return str(pynmea2.ZDA(talker, "ZDA", fields))


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
        receiver: str = "plain",
    ) -> None:
        if receiver not in RECEIVERS:
            raise ValueError(f"expected a receiver of {RECEIVERS}, got {receiver!r}")
        self.receiver = receiver
        self.route = route
        self.noise = noise or Noise()
        self.talker = talker
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self.now = now or (lambda: datetime.now(UTC))
        self.period = 1.0 / rate_hz
        self._t = 0.0
        self._silent_until = -1.0
        self.hold: tuple[float, float] | None = None  # stand still here (lat, lon)

    def epoch_bytes(self) -> bytes:
        """The next epoch as the receiver style puts it on the wire."""
        at = self.now()
        lines = self.epoch(at=at)
        if not lines:
            return b""
        if self.receiver == "rmc-only":
            lines = lines[:1]
        elif self.receiver == "gga-zda":
            lines = [zda(at, self.talker), lines[1]]
        data = "".join(line + "\r\n" for line in lines)
        if self.receiver == "teseo":
            data = "".join("$" + line + "\r\n" for line in lines)
        if self.receiver != "ublox-dual":
            return data.encode("ascii")
        fields = lines[1].split(",")  # GGA: the position it reports
        lat = _degrees(fields[2], fields[3])
        lon = _degrees(fields[4], fields[5])
        pvt = nav_pvt(at=at, lat=lat, lon=lon, sats=int(fields[7]))
        return pvt + data.encode("ascii")  # binary, then NMEA on the same "line"

    def epoch(self, *, at: datetime | None = None) -> list[str]:
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
            at=at or self.now(),
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
            data = self.epoch_bytes()
            if data:
                try:
                    os.write(fd, data)
                except BlockingIOError:
                    pass  # nobody reads the pty yet: the receiver talks anyway
                except OSError as exc:
                    logger.warning("GNSS simulator stopped writing: %s", exc)
                    return
            stop.wait(self.period)


def _degrees(value: str, hemi: str) -> float:
    dot = value.index(".")
    deg = float(value[: dot - 2]) + float(value[dot - 2 :]) / 60
    return -deg if hemi in "SW" else deg


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
