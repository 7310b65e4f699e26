"""The ANPR camera's exception tree.

    EdgeError
    └── CameraError                 root of what the camera raises on purpose
        ├── CaptureError (HardwareError)       a frame could not be read
        └── ModelMissingError (HardwareError)  a model file is not installed

The runtime's own errors (the link, the outbox, settings) are ``edge.errors``'.
"""

from __future__ import annotations

from edge.errors import EdgeError


class CameraError(EdgeError):
    """Root of every error the camera node raises on purpose."""


__all__ = ["CameraError"]
