"""The junction file and the time-of-day fallback schedule (pure).

A cabinet's junction file (JSON) describes what the cabinet guards::

    {"id": "C",
     "stages": [{"Ws": "G", "Es": "G", "Wl": "g", "El": "g"},
                {"Wl": "G", "El": "G"}, …],
     "crossings_m": {"PN": 18.0},          # optional pedestrian groups
     "min_green_s": 5, "min_all_red_s": 1, "min_cycle_s": 30, "max_cycle_s": 180,
     "fallback": [{"from": "00:00", "greens": [20, 6, 12, 6], "yellow": 3},
                  {"from": "07:00", "greens": [35, 8, 15, 6], "offset": 10}, …]}

Groups follow :func:`signal_controller.junction.four_leg` (a four-leg
junction) plus any pedestrian groups the stages name. Each fallback plan is
checked like a plan from central when the file is loaded: a cabinet never
starts with a schedule it would refuse.
"""

from __future__ import annotations

import json
from datetime import time
from typing import TYPE_CHECKING, Any

from signal_controller.junction import (
    Conflict,
    Junction,
    Plan,
    PlanRefusedError,
    check_plan,
    four_leg,
)

if TYPE_CHECKING:
    from pathlib import Path

LIMITS = ("min_green_s", "min_all_red_s", "min_cycle_s", "max_cycle_s")


class JunctionFileError(ValueError):
    """A junction file the cabinet cannot use; the message says why."""


def plan_from(junction: Junction, version: str, spec: dict[str, Any]) -> Plan:
    """A plan from its JSON form (cycle computed when not given).

    Raises:
        PlanRefusedError: it breaks a rule (rule ``format`` if malformed).
    """
    try:
        greens = tuple(float(g) for g in spec["greens"])
        yellow = float(spec.get("yellow", 3.0))
        all_red = float(spec.get("all_red", 1.0))
        cycle = float(spec.get("cycle", sum(greens) + len(greens) * (yellow + all_red)))
        plan = Plan(
            junction=junction.id,
            version=version,
            greens=greens,
            cycle=cycle,
            offset=float(spec.get("offset", 0.0)),
            yellow=yellow,
            all_red=all_red,
            coordinated=bool(spec.get("coordinated", False)),
            actuated=bool(spec.get("actuated", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanRefusedError(
            "format", f"expected greens, yellow, all_red: {exc}"
        ) from exc
    check_plan(junction, plan)
    return plan


def load_junction(path: Path) -> tuple[Junction, list[tuple[time, Plan]]]:
    """The junction and its fallback schedule, sorted by start time.

    Raises:
        JunctionFileError: unreadable, malformed, or a fallback plan that
            breaks a rule (named).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stages = [dict(s) for s in data["stages"]]
        extra = sorted({g for s in stages for g in s if g.startswith("P")})
        base = four_leg(
            str(data["id"]),
            stages,
            crossings_m={k: float(v) for k, v in data.get("crossings_m", {}).items()},
            **{k: float(data[k]) for k in LIMITS if k in data},
        )
        junction = Junction(
            id=base.id,
            groups=(*base.groups, *extra),
            conflicts={**base.conflicts, **_pedestrian_conflicts(extra, base)},
            stages=base.stages,
            min_green_s=base.min_green_s,
            min_all_red_s=base.min_all_red_s,
            min_cycle_s=base.min_cycle_s,
            max_cycle_s=base.max_cycle_s,
            crossings_m=base.crossings_m,
        )
        schedule = []
        for i, entry in enumerate(data.get("fallback", [])):
            start = time.fromisoformat(str(entry["from"]))
            schedule.append((start, plan_from(junction, f"fallback-{i + 1}", entry)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JunctionFileError(f"{path}: {exc}") from exc
    if not schedule:
        raise JunctionFileError(f"{path}: no fallback plan (a cabinet needs one)")
    return junction, sorted(schedule, key=lambda item: item[0])


def _pedestrian_conflicts(
    crossings: list[str], base: Junction
) -> dict[frozenset[str], Conflict]:
    """A crossing ``P<leg>`` conflicts with every vehicle movement over that leg.

    Vehicles cross leg X when they arrive from X (all movements) or leave by
    it; for simplicity every movement that enters or leaves leg X conflicts.
    """
    out: dict[frozenset[str], Conflict] = {}
    leaves = {"W": {"Es", "Nr", "Sl"}, "E": {"Ws", "Sr", "Nl"}}
    leaves |= {"N": {"Ss", "Wl", "Er"}, "S": {"Ns", "El", "Wr"}}
    for p in crossings:
        leg = p[1:2]
        movements = {f"{leg}{m}" for m in "slr"} | leaves.get(leg, set())
        for g in movements & set(base.groups):
            out[frozenset((p, g))] = "never"
    return out


def scheduled_plan(schedule: list[tuple[time, Plan]], local: time) -> Plan:
    """The fallback plan in force at local time ``local``."""
    current = schedule[-1][1]  # before the first start: yesterday's last plan
    for start, plan in schedule:
        if local >= start:
            current = plan
    return current
