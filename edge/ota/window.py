"""Maintenance windows: when a node may take an update.

Pure. A signal cabinet never updates in its peak hours; a kiosk never while
a citizen is using it; a handheld never during an SOS. Each kind's agent
answers :meth:`edge.agent.Agent.update_deferral` with the reason to wait, or
None; the time-of-day rule lives here.
"""

from __future__ import annotations

from datetime import datetime, time


def parse_window(text: str) -> tuple[time, time]:
    """``"07:00-09:30"`` → (start, end).

    Raises:
        ValueError: not HH:MM-HH:MM.
    """
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError as exc:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}") from exc
    return start, end


def in_windows(local: datetime, windows: list[str]) -> str | None:
    """The window ``local`` falls in (windows may cross midnight), or None."""
    now = local.time()
    for text in windows:
        start, end = parse_window(text)
        inside = start <= now < end if start <= end else (now >= start or now < end)
        if inside:
            return text
    return None
