"""Where frames come from: one small interface, chosen by a settings URL.

``cv:0`` / ``cv:rtsp://…`` / ``cv:/path/video.mp4`` — OpenCV (USB cameras,
IP cameras, files); ``picamera2`` — the Pi camera; ``spool:/dir`` — the
simulator's spool, where ``firmware_sim`` drops JPEG frames (named so that
they sort by time) and the node takes the oldest. A frame that cannot be
decoded raises :class:`CaptureError` (the agent counts it and raises a
fault); no frame is ``None``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from camera_node.errors import CameraError
from edge.errors import HardwareError, SettingsError


class CaptureError(CameraError, HardwareError):
    """A frame could not be read (corrupt, or the device failed)."""


class FrameSource(Protocol):
    """What the agent needs from a camera."""

    def read(self) -> np.ndarray | None:
        """The next frame (BGR), or None when none is ready."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class OpenCvSource:
    """A USB camera (index), an RTSP stream or a video file through OpenCV."""

    def __init__(self, target: str) -> None:
        self._cap = cv2.VideoCapture(int(target) if target.isdigit() else target)
        if not self._cap.isOpened():
            raise CaptureError(f"OpenCV cannot open {target!r}")

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end of a file."""
        ok, frame = self._cap.read()
        return frame if ok else None

    def close(self) -> None:
        """Release the capture."""
        self._cap.release()


class Picamera2Source:  # pragma: no cover - needs a Raspberry Pi camera
    """The Raspberry Pi camera through picamera2."""

    def __init__(self) -> None:
        from picamera2 import Picamera2  # type: ignore[import-not-found]  # noqa: PLC0415

        self._cam: Any = Picamera2()
        self._cam.configure(
            self._cam.create_still_configuration(main={"format": "BGR888"})
        )
        self._cam.start()

    def read(self) -> np.ndarray | None:
        """Capture one frame."""
        frame: np.ndarray = self._cam.capture_array()
        return frame

    def close(self) -> None:
        """Stop the camera."""
        self._cam.stop()


class SpoolSource:
    """The simulator's spool directory: take the oldest JPEG, then delete it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def read(self) -> np.ndarray | None:
        """The oldest spooled frame, or None when the spool is empty.

        Raises:
            CaptureError: the file is not a decodable image (it is removed).
        """
        files = sorted(self.directory.glob("*.jpg"))
        if not files:
            return None
        path = files[0]
        data = path.read_bytes()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise CaptureError(f"corrupt frame {path.name} ({len(data)} bytes)")
        return frame

    def close(self) -> None:
        """Nothing to release."""


def open_source(url: str) -> FrameSource:
    """Open the frame source a settings URL names.

    Raises:
        SettingsError: an unknown scheme.
        CaptureError: the device cannot be opened.
    """
    scheme, _, rest = url.partition(":")
    if scheme == "cv" and rest:
        return OpenCvSource(rest)
    if scheme == "spool" and rest:
        return SpoolSource(Path(rest))
    if url == "picamera2":
        return Picamera2Source()
    raise SettingsError(
        f"expected camera as cv:<index|url|file>, spool:<dir> or picamera2, got {url!r}"
    )
