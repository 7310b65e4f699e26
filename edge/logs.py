"""Logging set-up for ``main()`` functions; library modules only get loggers."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    """Send log records to stderr with time, level and logger name."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
