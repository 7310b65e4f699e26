"""The SOS incident's life: raised → acknowledged → assigned → resolved.

Pure: phases, timestamps and rules in; the next phase or what is due out.
The command centre acknowledges; until it does, the alarm repeats to the
officers nearby and, past ``escalate_s``, escalates (the unit leader and a
wider radius). An officer may cancel a raised SOS; command may close any
open one as a false alarm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from central.errors import ConflictError, InvalidError

Phase = Literal[
    "raised", "acknowledged", "assigned", "resolved", "false_alarm", "cancelled"
]
OPEN: frozenset[str] = frozenset({"raised", "acknowledged", "assigned"})
NEXT: dict[str, frozenset[str]] = {
    "raised": frozenset({"acknowledged", "false_alarm", "cancelled"}),
    "acknowledged": frozenset({"assigned", "resolved", "false_alarm", "cancelled"}),
    "assigned": frozenset({"assigned", "resolved", "false_alarm", "cancelled"}),
}


@dataclass(frozen=True, slots=True)
class SosRules:
    """Radius, repeat and escalation of an SOS."""

    radius_m: float = 2000.0
    repeat_s: float = 10.0
    escalate_s: float = 30.0
    escalate_radius_m: float = 5000.0
    delayed_s: float = 15.0  # pressed this long before central heard of it
    max_alerted: int = 20

    def __post_init__(self) -> None:
        if min(self.radius_m, self.repeat_s, self.escalate_s) <= 0:
            raise InvalidError(f"expected positive SOS rules, got {self}")


def advance(phase: str, to: str) -> str:
    """Check one transition of an alarm's state.

    Raises:
        ConflictError: ``to`` cannot follow ``phase``, naming both.
    """
    allowed = NEXT.get(phase, frozenset())
    if to not in allowed:
        raise ConflictError(
            f"an alarm that is {phase} cannot become {to}; "
            f"expected one of {sorted(allowed) or 'nothing (it is closed)'}"
        )
    return to


def is_delayed(pressed_at: datetime, received_at: datetime, rules: SosRules) -> bool:
    """Whether central heard of the SOS late (the link was down)."""
    return received_at - pressed_at > timedelta(seconds=rules.delayed_s)


Due = Literal["repeat", "escalate"]


def due(
    *,
    phase: str,
    raised_at: datetime,
    last_alert_at: datetime | None,
    escalated: bool,
    now: datetime,
    rules: SosRules,
) -> list[Due]:
    """What an unacknowledged SOS needs now: a repeat, an escalation, both."""
    if phase != "raised":
        return []
    out: list[Due] = []
    if not escalated and now - raised_at >= timedelta(seconds=rules.escalate_s):
        out.append("escalate")
    last = last_alert_at or raised_at
    if now - last >= timedelta(seconds=rules.repeat_s):
        out.append("repeat")
    return out
