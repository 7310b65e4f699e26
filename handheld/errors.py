"""The police handheld's exception tree.

    EdgeError
    └── HandheldError               root of what the handheld raises on purpose
        └── NmeaError (HardwareError, ValueError)
                                    a GNSS sentence that cannot be used

The runtime's own errors (the link, the outbox, settings) are ``edge.errors``'.
"""

from __future__ import annotations

from edge.errors import EdgeError


class HandheldError(EdgeError):
    """Root of every error the handheld raises on purpose."""


__all__ = ["HandheldError"]
