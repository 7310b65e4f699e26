"""A simulated street camera: vehicles driving past, as JPEG frames in a spool.

Each vehicle approaches the camera over a few frames (its plate moving down
the image and growing), under a random mix of blur, glare and night. The
frames are written into a spool directory that the camera node reads
(``camera_url = "spool:<dir>"``), named so that they sort by time. A frame
can be written corrupt on purpose, and the camera can be paused (a camera
that stops delivering) — both faults the node must report and survive.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2

from firmware_sim.plates import COLOURS, Colour, random_plate, scene

if TYPE_CHECKING:
    import threading
    from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass
class Vehicle:
    """A vehicle to drive past: its plate, and how the scene looks."""

    text: str
    colour: Colour = "blue"
    frames: int = 4
    night: bool = False
    glare: bool = False
    blur: float = 0.0


@dataclass
class SceneCamera:
    """Writes vehicles passing by into ``spool`` as JPEG frames."""

    spool: Path
    seed: int = 0
    size: tuple[int, int] = (960, 540)
    queue: list[Vehicle] = field(default_factory=list)
    paused: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - simulation
        self.spool.mkdir(parents=True, exist_ok=True)
        self._n = 0

    def _name(self) -> Path:
        self._n += 1
        return self.spool / f"{time.time_ns():020d}-{self._n:06d}.jpg"

    def _write(self, data: bytes) -> None:
        path = self._name()
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # the node never sees half a file

    def frames_of(self, vehicle: Vehicle) -> list[tuple[bytes, float]]:
        """The JPEG frames of one vehicle passing, with the plate's bottom row."""
        out = []
        start_y = self.rng.uniform(0.35, 0.45)
        for k in range(vehicle.frames):
            f = k / max(1, vehicle.frames - 1)
            width = 150 + 80 * f  # the plate grows as the car comes closer
            shot = scene(
                self.rng,
                vehicle.text,
                vehicle.colour,
                size=self.size,
                plate_width=width,
                centre_y=start_y + 0.3 * f,
                blur=vehicle.blur,
                glare=vehicle.glare,
                night=vehicle.night,
            )
            ok, data = cv2.imencode(".jpg", shot.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                out.append((bytes(data), max(y for _, y in shot.corners)))
        return out

    def drive(self, vehicle: Vehicle, *, gap_s: float = 0.0) -> None:
        """Write one vehicle's frames now (``gap_s`` apart)."""
        for data, _ in self.frames_of(vehicle):
            self._write(data)
            if gap_s:
                time.sleep(gap_s)

    def corrupt(self) -> None:
        """Write a frame that is not a JPEG."""
        self._write(b"\xff\xd8 this is not a picture")

    def random_vehicle(self) -> Vehicle:
        """Mostly local blue plates, some from elsewhere, every colour now and then."""
        colour: Colour = self.rng.choice(
            ("blue", "blue", "blue", "green", "yellow", *COLOURS)
        )
        province = self.rng.choice("湘湘湘湘湘鄂粤赣京")
        return Vehicle(
            text=random_plate(self.rng, colour, province),
            colour=colour,
            night=self.rng.random() < 0.15,  # noqa: PLR2004
            glare=self.rng.random() < 0.1,  # noqa: PLR2004
        )

    def run(self, stop: threading.Event, *, every_s: float = 6.0) -> None:
        """Until ``stop``: a vehicle every ``every_s`` (queued ones first)."""
        while not stop.is_set():
            if not self.paused:
                vehicle = self.queue.pop(0) if self.queue else self.random_vehicle()
                try:
                    self.drive(vehicle, gap_s=0.2)
                except OSError as exc:
                    logger.warning("Camera simulator cannot write frames: %s", exc)
            stop.wait(every_s)
