"""The kiosk's exception tree.

    EdgeError
    └── KioskError                  root of what the kiosk raises on purpose
        ├── CentralAwayError (HardwareError, ConnectionError)
        │                           central did not answer (the kiosk is offline)
        ├── CentralRefusedError     central answered with an error status
        └── PrinterError (HardwareError)
                                    the receipt printer cannot print

httpx's errors never leave :mod:`kiosk.agent`: they become the first two
here, which the screen (:mod:`kiosk.web`) turns into a message in Chinese.
"""

from __future__ import annotations

from edge.errors import EdgeError, HardwareError


class KioskError(EdgeError):
    """Root of every error the kiosk raises on purpose."""


class CentralAwayError(KioskError, HardwareError, ConnectionError):
    """Central did not answer (the kiosk is offline)."""


class CentralRefusedError(KioskError):
    """Central answered with an error status.

    Attributes:
        status: the HTTP status central answered with (404, 409, 422, ...).
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


__all__ = ["CentralAwayError", "CentralRefusedError", "KioskError"]
