"""The simulated SOS pin: a file the handheld's ``FileSosButton`` reads.

``press`` holds the button for a while, as an officer's thumb would;
``baling sim press`` calls it from the command line.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def set_level(pin: Path, *, pressed: bool) -> None:
    """Set the pin's level (atomically: write a temp file, then rename)."""
    tmp = pin.with_suffix(".tmp")
    tmp.write_bytes(b"1" if pressed else b"0")
    tmp.replace(pin)


def press(pin: Path, hold_s: float) -> None:
    """Press the button, hold it for ``hold_s`` seconds, release it."""
    set_level(pin, pressed=True)
    try:
        time.sleep(hold_s)
    finally:
        set_level(pin, pressed=False)
