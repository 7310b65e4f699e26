"""Time as a dependency: the system clock, and a manual one for tests.

Everything that needs "now" takes a :class:`Clock`; nothing in the pure cores
reads the clock itself.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time for timestamps, monotonic time for intervals."""

    def now(self) -> datetime:
        """Return the current UTC wall time."""
        ...

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes back."""
        ...


class SystemClock:
    """The host's clocks."""

    def now(self) -> datetime:
        """Return the current UTC wall time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests and simulations)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("expected an aware start time, got a naive one")
        self._now = start
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the clock's current time."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Return seconds advanced since creation."""
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        if seconds < 0:
            raise ValueError(f"expected seconds >= 0, got {seconds}")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
