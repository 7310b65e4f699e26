"""The SOS button's gesture: a long press raises, a press soon after cancels.

Pure: the button level and a monotonic time in; the new state and what to do
out. Holding the button for ``hold_s`` raises the SOS at once (it is sent
while the officer still holds it); any press within ``cancel_s`` after that
cancels it. Reading the pin is the agent's job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Action = Literal["raise", "cancel"]


@dataclass(frozen=True, slots=True)
class PressState:
    """Where the gesture stands."""

    down_since: float | None = None  # when the current press began
    raised_at: float | None = None  # when the last SOS was raised
    fired: bool = False  # this press has already raised or cancelled


def on_level(
    state: PressState, *, pressed: bool, now: float, hold_s: float, cancel_s: float
) -> tuple[PressState, Action | None]:
    """Take one reading of the button; return the new state and an action."""
    if not pressed:
        return replace(state, down_since=None, fired=False), None
    if state.down_since is None:  # the press begins
        state = replace(state, down_since=now)
        cancelling = state.raised_at is not None and now - state.raised_at <= cancel_s
        if cancelling:
            return replace(state, raised_at=None, fired=True), "cancel"
        return state, None
    if not state.fired and now - state.down_since >= hold_s:
        return replace(state, raised_at=now, fired=True), "raise"
    return state, None
