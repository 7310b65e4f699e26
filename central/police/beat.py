"""Beat watch: left the beat, the unit leader told, stationary on duty.

Pure: one officer's watch state, a fix already judged by the shell (inside
the buffered beat or not, good enough or not, where in metres) and its time
in; the new state and what to raise out. A poor fix never moves the watch.
Leaving is *pending* from the first good fix outside and raises
``beat_exit`` after ``exit_fixes`` fixes or ``exit_s`` outside; after
``leader_after_s`` outside the unit leader is told (``beat_leader``), also
from :func:`on_time` when the handheld falls silent. Stationary: every fix
within ``stationary_m`` of where the officer stopped for ``stationary_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from central.errors import InvalidError

Finding = Literal["beat_exit", "beat_leader", "beat_return", "stationary", "moving"]


@dataclass(frozen=True, slots=True)
class BeatRules:
    """Thresholds of the beat watch (all configurable per deployment)."""

    exit_fixes: int = 2
    exit_s: float = 60.0
    leader_after_s: float = 900.0
    buffer_m: float = 30.0
    max_accuracy_m: float = 50.0
    max_hdop: float = 5.0
    stationary_m: float = 50.0
    stationary_s: float = 1200.0

    def __post_init__(self) -> None:
        if self.exit_fixes < 1 or min(self.exit_s, self.stationary_s) <= 0:
            raise InvalidError(f"expected positive beat rules, got {self}")


@dataclass(frozen=True, slots=True)
class Watch:
    """One officer's watch; serialisable as a plain dict (see :func:`to_dict`)."""

    outside_since: datetime | None = None
    outside_fixes: int = 0
    alarmed: bool = False
    leader_told: bool = False
    anchor_x: float | None = None
    anchor_y: float | None = None
    anchor_since: datetime | None = None
    stationary: bool = False
    last_at: datetime | None = None


def is_poor(*, accuracy_m: float | None, hdop: float | None, rules: BeatRules) -> bool:
    """A fix too uncertain to judge a beat by."""
    return (accuracy_m is not None and accuracy_m > rules.max_accuracy_m) or (
        hdop is not None and hdop > rules.max_hdop
    )


def on_fix(
    watch: Watch,
    *,
    at: datetime,
    inside: bool | None,
    x: float,
    y: float,
    poor: bool,
    rules: BeatRules,
) -> tuple[Watch, list[Finding]]:
    """Judge one fix. ``inside`` is None when the officer has no beat on duty now."""
    if poor or (watch.last_at is not None and at <= watch.last_at):
        return watch, []  # uncertain, or older than what we judged already
    found: list[Finding] = []
    watch = replace(watch, last_at=at)
    if inside is None:
        return Watch(last_at=at), []  # off duty: nothing to watch
    if inside:
        if watch.alarmed:
            found.append("beat_return")
        watch = replace(
            watch, outside_since=None, outside_fixes=0, alarmed=False, leader_told=False
        )
    else:
        watch = replace(
            watch,
            outside_since=watch.outside_since or at,
            outside_fixes=watch.outside_fixes + 1,
        )
        watch, more = on_time(watch, at=at, rules=rules)
        found += more
    watch, more = _stationary(watch, at=at, x=x, y=y, rules=rules)
    return watch, found + more


def on_time(
    watch: Watch, *, at: datetime, rules: BeatRules
) -> tuple[Watch, list[Finding]]:
    """Advance the exit timers without a fix (a silent handheld)."""
    if watch.outside_since is None:
        return watch, []
    found: list[Finding] = []
    outside = at - watch.outside_since
    if not watch.alarmed and (
        watch.outside_fixes >= rules.exit_fixes
        or outside >= timedelta(seconds=rules.exit_s)
    ):
        watch = replace(watch, alarmed=True)
        found.append("beat_exit")
    if (
        watch.alarmed
        and not watch.leader_told
        and outside >= timedelta(seconds=rules.leader_after_s)
    ):
        watch = replace(watch, leader_told=True)
        found.append("beat_leader")
    return watch, found


def _stationary(
    watch: Watch, *, at: datetime, x: float, y: float, rules: BeatRules
) -> tuple[Watch, list[Finding]]:
    if watch.anchor_x is None or watch.anchor_y is None or watch.anchor_since is None:
        return replace(watch, anchor_x=x, anchor_y=y, anchor_since=at), []
    if math.hypot(x - watch.anchor_x, y - watch.anchor_y) > rules.stationary_m:
        moved: list[Finding] = ["moving"] if watch.stationary else []
        return replace(
            watch, anchor_x=x, anchor_y=y, anchor_since=at, stationary=False
        ), moved
    if not watch.stationary and at - watch.anchor_since >= timedelta(
        seconds=rules.stationary_s
    ):
        return replace(watch, stationary=True), ["stationary"]
    return watch, []


def to_dict(watch: Watch) -> dict[str, object]:
    """JSON-ready form for the database."""
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in (
            (name, getattr(watch, name)) for name in Watch.__dataclass_fields__
        )
    }


def from_dict(data: dict[str, object]) -> Watch:
    """The inverse of :func:`to_dict`; unknown keys are ignored."""
    values: dict[str, object] = {}
    for name in Watch.__dataclass_fields__:
        if name not in data:
            continue
        value = data[name]
        if name in {"outside_since", "anchor_since", "last_at"} and isinstance(
            value, str
        ):
            value = datetime.fromisoformat(value)
        values[name] = value
    return Watch(**values)  # type: ignore[arg-type]
