"""The junction file and the time-of-day fallback schedule (pure).

A cabinet's junction file (JSON) describes what the cabinet guards::

    {"id": "C",
     "stages": [{"Ws": "G", "Es": "G", "Wl": "g", "El": "g"},
                {"Wl": "G", "El": "G"}, …],
     "crossings_m": {"PN": 18.0},          # optional pedestrian groups
     "min_green_s": 5, "min_all_red_s": 1, "min_cycle_s": 30, "max_cycle_s": 180,
     "geometry": {"lanes_in": 3, "lanes_out": 3, "lane_m": 3.2},  # optional
     "paths": [{"group": "Wl", "points": [[x, y], …], "wait_m": 7.2}, …],  # or

     "fallback": [{"from": "00:00", "greens": [20, 6, 12, 6], "yellow": 3},
                  {"from": "07:00", "greens": [35, 8, 15, 6], "offset": 10}, …]}

Groups follow :func:`signal_controller.junction.four_leg` (a four-leg
junction) plus any pedestrian groups the stages name. The intergreen
matrix (:mod:`signal_controller.intergreen`) is derived from ``paths`` —
each lane's course through the junction from its stop line, in metres, and
where a permissive left turner waits — or, without them, from
``geometry``, a standard four-leg junction of that many lanes; a file with
neither has no matrix (yellow + minimum all-red only). Each fallback plan is
checked like a plan from central when the file is loaded: a cabinet never
starts with a schedule it would refuse.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import time
from typing import TYPE_CHECKING, Any

from signal_controller.errors import SignalError
from signal_controller.intergreen import (
    GeometryError,
    Intergreens,
    Path,
    derive,
    four_leg_paths,
)
from signal_controller.junction import (
    OPPOSITE,
    Conflict,
    Junction,
    Plan,
    PlanRefusedError,
    check_plan,
    four_leg,
)

if TYPE_CHECKING:
    import pathlib

LIMITS = ("min_green_s", "min_all_red_s", "min_cycle_s", "max_cycle_s")


class JunctionFileError(SignalError, ValueError):
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


def junction_intergreens(junction: Junction, paths: list[Path]) -> Intergreens:
    """The junction's intergreen matrices from its lanes' paths.

    Every conflicting pair of the junction's vehicle groups; a left turn
    waits for the opposing straight and right turn.
    """
    pairs = [
        (a, b)
        for a, b in (tuple(sorted(k)) for k in junction.conflicts)
        if not a.startswith("P") and not b.startswith("P")
    ]
    yields = {f"{a}l": (f"{OPPOSITE[a]}s", f"{OPPOSITE[a]}r") for a in OPPOSITE}
    return derive(paths, pairs, yields_to=yields)


def paths_from(data: dict[str, Any]) -> list[Path] | None:
    """The file's lane paths (``paths``, or a standard ``geometry``), if any.

    Raises:
        GeometryError: a path or geometry that is malformed.
    """
    try:
        if "paths" in data:
            return [
                Path(
                    str(p["group"]),
                    tuple((float(x), float(y)) for x, y in p["points"]),
                    None if p.get("wait_m") is None else float(p["wait_m"]),
                )
                for p in data["paths"]
            ]
        if "geometry" in data:
            g = data["geometry"]
            return four_leg_paths(
                lanes_in=int(g.get("lanes_in", 3)),
                lanes_out=int(g.get("lanes_out", 3)),
                lane_m=float(g.get("lane_m", 3.2)),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise GeometryError(f"expected paths or geometry, got {exc}") from exc
    return None


def load_junction(path: pathlib.Path) -> tuple[Junction, list[tuple[time, Plan]]]:
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
        paths = paths_from(data)
        if paths is not None:
            junction = replace(
                junction, intergreens=junction_intergreens(junction, paths)
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
