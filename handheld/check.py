"""``baling gnss check``: qualify a GNSS receiver (being written)."""

from __future__ import annotations

import sys


def run_check(source: str, *, as_json: bool, baud: int, seconds: float) -> int:
    """Read ``source`` and report its fixes (not yet implemented)."""
    del as_json, baud, seconds
    print(f"baling gnss check: not yet implemented for {source}", file=sys.stderr)
    return 2
