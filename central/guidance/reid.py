"""Re-identifying vehicles between two cameras by keyed plate hashes (pure).

A plate read becomes a :class:`Passage`: the camera, the time and an
HMAC-SHA256 of the plate under a key only central holds
(:func:`plate_key`), so the travel-time tables never hold a plate (a
dictionary attack on an unkeyed hash of ~10⁸ possible plates takes
seconds). :func:`match_passages` pairs each read at the destination with the
latest read of the same hash at the origin within ``max_s``; a vehicle read
twice at one camera counts once (the first read at the origin is dropped
for the later one: the vehicle was still there).

Left to others: storing passages and deleting them after their short
retention (:mod:`central.guidance.service`), and what a trip's time means
(:mod:`central.guidance.traveltime` removes stops and detours).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

KEY_BYTES = 32
HASH_CHARS = 32  # 128 bits of the HMAC: collisions stay out of the data


def plate_key(secret: bytes, *, day: str) -> bytes:
    """The key of one day's plate hashes, derived from central's secret.

    A new key each day means that even the hashes cannot follow a vehicle
    from one day to the next (trips span minutes, not days).

    Args:
        secret: central's key (at least 32 bytes).
        day: the UTC date, ``YYYY-MM-DD``.

    Raises:
        ValueError: a secret shorter than 32 bytes.
    """
    if len(secret) < KEY_BYTES:
        raise ValueError(f"expected a key of {KEY_BYTES}+ bytes, got {len(secret)}")
    return hmac.new(secret, b"baling-guidance-plate:" + day.encode(), "sha256").digest()


def hash_plate(key: bytes, plate: str) -> str:
    """The keyed hash of a plate (hex, :data:`HASH_CHARS` characters)."""
    mac = hmac.new(key, plate.strip().upper().encode(), hashlib.sha256)
    return mac.hexdigest()[:HASH_CHARS]


@dataclass(frozen=True, slots=True)
class Passage:
    """One vehicle seen at one camera: where, when, and its plate's hash."""

    camera: str
    plate_hash: str
    at: datetime

    def __post_init__(self) -> None:
        if not self.camera or not self.plate_hash:
            raise ValueError(
                f"expected a camera and a plate hash, got {self.camera!r}, "
                f"{self.plate_hash!r}"
            )
        if self.at.tzinfo is None:
            raise ValueError(f"expected an aware time, got {self.at!r}")


@dataclass(frozen=True, slots=True)
class Trip:
    """A vehicle matched between two cameras: when it left and arrived."""

    plate_hash: str
    entered: datetime
    exited: datetime

    @property
    def seconds(self) -> float:
        """The trip's travel time."""
        return (self.exited - self.entered).total_seconds()


def match_passages(
    origin: Iterable[Passage],
    destination: Iterable[Passage],
    *,
    max_s: float,
    min_s: float = 0.0,
) -> list[Trip]:
    """Pair destination reads with the latest earlier origin read of the same hash.

    Args:
        origin: reads at the upstream camera.
        destination: reads at the downstream camera.
        max_s: the longest trip that is still one trip (longer: a detour,
            or two different journeys of one vehicle).
        min_s: the shortest possible trip (faster than free flow: a
            misread that happened to give another vehicle's plate).

    Returns:
        Trips ordered by their arrival; each destination read at most once,
        each origin read at most once.
    """
    by_hash: dict[str, list[datetime]] = {}
    for p in sorted(origin, key=lambda p: p.at):
        by_hash.setdefault(p.plate_hash, []).append(p.at)
    used: set[tuple[str, datetime]] = set()
    trips: list[Trip] = []
    for d in sorted(destination, key=lambda p: p.at):
        entries = by_hash.get(d.plate_hash, [])
        best: datetime | None = None
        for at in reversed(entries):  # the latest read before the arrival
            seconds = (d.at - at).total_seconds()
            if seconds < min_s:
                continue
            if seconds <= max_s and (d.plate_hash, at) not in used:
                best = at
            break
        if best is not None:
            used.add((d.plate_hash, best))
            trips.append(Trip(plate_hash=d.plate_hash, entered=best, exited=d.at))
    return trips
