"""A junction's safety rules and timing plans: the cabinet's functional core.

Pure. A junction has **signal groups** (one per approach and movement:
``Ws`` is the westbound-entering… no — the approach it comes *from*: ``W``
is traffic arriving from the west, ``s``/``l``/``r`` through, left, right;
``P`` groups are pedestrian crossings), a **conflict matrix** (pairs that
must never be green together, and pairs where one may go only as a
permissive ``g`` movement that yields, like a left turn across opposing
through traffic) and a **stage table** (which groups are green in each
stage, ``G`` protected or ``g`` permissive). A **plan** chooses only the
durations: cycle, offset, a green per stage, yellow and all-red.

:func:`check_plan` refuses any plan that breaks a rule and names the rule;
:func:`state_at` is what the controller shows at any second of a plan
(greens, then yellow and all-red for the groups that lose right of way).
A plan that :func:`check_plan` accepts never shows two conflicting greens —
a property tested with Hypothesis over random junctions and plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from signal_controller.errors import SignalError

if TYPE_CHECKING:
    from signal_controller.intergreen import Intergreens

Conflict = Literal["never", "yield"]
APPROACHES = ("W", "E", "N", "S")
OPPOSITE = {"W": "E", "E": "W", "N": "S", "S": "N"}
# A right turn leaves by the same leg as the through movement of this approach:
RIGHT_MERGES_WITH = {"W": "N", "E": "S", "N": "E", "S": "W"}
# … and as the opposing approach's left turn.
MIN_YELLOW_S = 3.0
PED_SPEED_MPS = 1.2
PED_WALK_S = 7.0


class PlanRefusedError(SignalError, ValueError):
    """A plan the cabinet will not run; ``rule`` names the rule it broke."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Junction:
    """One intersection's groups, conflicts, stages and limits."""

    id: str
    groups: tuple[str, ...]
    conflicts: dict[frozenset[str], Conflict]
    stages: tuple[dict[str, str], ...]  # group -> "G" | "g", green in that stage
    min_green_s: float = 5.0
    min_all_red_s: float = 1.0
    min_cycle_s: float = 30.0
    max_cycle_s: float = 180.0
    crossings_m: dict[str, float] = field(default_factory=dict)  # P group -> length
    # from the geometry (:mod:`signal_controller.intergreen`); None: only
    # yellow + min all-red
    intergreens: Intergreens | None = None

    def conflict(self, a: str, b: str) -> Conflict | None:
        """How groups ``a`` and ``b`` conflict, if they do."""
        return self.conflicts.get(frozenset((a, b)))


def four_leg(
    junction_id: str,
    stages: list[dict[str, str]],
    *,
    crossings_m: dict[str, float] | None = None,
    **limits: float,
) -> Junction:
    """A four-leg junction (right-hand traffic) with the usual conflicts.

    Through movements conflict with the crossing street's through and left
    turns; left turns with the crossing street's left turns; a left turn
    yields to the opposing through; a right turn merges with the through
    coming from its right and yields to the opposing left turn.
    """
    groups = tuple(f"{a}{m}" for a in APPROACHES for m in "slr")
    conflicts: dict[frozenset[str], Conflict] = {}
    for a in APPROACHES:
        crossing = [p for p in APPROACHES if p not in (a, OPPOSITE[a])]
        for p in crossing:
            conflicts[frozenset((f"{a}s", f"{p}s"))] = "never"
            conflicts[frozenset((f"{a}s", f"{p}l"))] = "never"
            conflicts[frozenset((f"{a}l", f"{p}l"))] = "never"
        conflicts[frozenset((f"{a}l", f"{OPPOSITE[a]}s"))] = "yield"
        conflicts[frozenset((f"{a}r", f"{RIGHT_MERGES_WITH[a]}s"))] = "never"
        conflicts[frozenset((f"{a}r", f"{OPPOSITE[a]}l"))] = "yield"
    return Junction(
        id=junction_id,
        groups=groups,
        conflicts=conflicts,
        stages=tuple(stages),
        crossings_m=crossings_m or {},
        min_green_s=limits.get("min_green_s", 5.0),
        min_all_red_s=limits.get("min_all_red_s", 1.0),
        min_cycle_s=limits.get("min_cycle_s", 30.0),
        max_cycle_s=limits.get("max_cycle_s", 180.0),
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """Durations for a junction's stages (what central computes and signs)."""

    junction: str
    version: str
    greens: tuple[float, ...]
    cycle: float
    offset: float = 0.0
    yellow: float = 3.0
    all_red: float = 1.0
    coordinated: bool = False  # hold to the offset (a green wave), or run free
    # vehicle-actuated: greens are maxima; the controller ends a green when
    # its detectors see a gap, skips stages nobody waits for, rests in green
    actuated: bool = False

    @property
    def intergreen(self) -> float:
        """Yellow plus all-red after each stage."""
        return self.yellow + self.all_red


def transition_need(
    j: Junction,
    src: dict[str, str],
    dst: dict[str, str],
    *,
    waiting: bool = True,
) -> tuple[float, str, str]:
    """The intergreen a change from stage ``src`` to ``dst`` needs, and its pair.

    Groups whose green ends (shown in ``src``, not the same in ``dst``)
    against groups whose green starts; ``(0, "", "")`` when nothing
    conflicts or the junction has no intergreen matrix. ``waiting=False``:
    the controller knows no permissive left turner can be waiting inside
    (none crossed a stop line during this green), so a ``g`` ending counts
    as a protected one.
    """
    best = (0.0, "", "")
    if j.intergreens is None:
        return best
    for a, was in src.items():
        if dst.get(a) == was:
            continue
        for b, now in dst.items():
            if src.get(b) == now:
                continue
            need = j.intergreens.need(a, b, was=was if waiting else "G")
            if need > best[0]:
                best = (need, a, b)
    return best


def all_red_for(
    j: Junction, plan: Plan, src: int, dst: int, *, waiting: bool = True
) -> float:
    """The all-red between two stages: the plan's, or longer where geometry needs.

    What the controller runs in vehicle-actuated mode, where any stage may
    follow any other (``waiting`` as in :func:`transition_need`).
    """
    need, _a, _b = transition_need(j, j.stages[src], j.stages[dst], waiting=waiting)
    return max(plan.all_red, need - plan.yellow)


def intergreen_table(j: Junction) -> dict[str, float]:
    """The matrix as shown to people: ``"Wl>Nl"`` → seconds (protected end).

    A permissive end that needs longer appears as ``"Wl(g)>Nl"``.
    """
    if j.intergreens is None:
        return {}
    out = {f"{a}>{b}": t for (a, b), t in sorted(j.intergreens.protected.items())}
    for (a, b), t in sorted(j.intergreens.permissive.items()):
        if t > j.intergreens.protected.get((a, b), 0.0):
            out[f"{a}(g)>{b}"] = t
    return out


def check_stages(j: Junction) -> None:
    """Refuse a stage table with two conflicting greens in one stage.

    Raises:
        PlanRefusedError: rule ``conflict`` or ``unknown_group``.
    """
    for number, stage in enumerate(j.stages, start=1):
        for group, kind in stage.items():
            if group not in j.groups or kind not in ("G", "g"):
                raise PlanRefusedError(
                    "unknown_group", f"stage {number} shows {group!r} as {kind!r}"
                )
        names = sorted(stage)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                how = j.conflict(a, b)
                if how == "never" or (
                    how == "yield" and "g" not in (stage[a], stage[b])
                ):
                    raise PlanRefusedError(
                        "conflict", f"stage {number} shows {a} and {b} green together"
                    )


def check_plan(j: Junction, plan: Plan) -> None:
    """Refuse a plan that breaks any rule, naming the rule.

    Raises:
        PlanRefusedError: ``junction``, ``stages``, ``yellow``, ``all_red``,
            ``intergreen``, ``min_green``, ``pedestrian_clearance``, ``cycle``,
            ``cycle_bounds``, ``offset`` or a stage-table rule.
    """
    if plan.junction != j.id:
        raise PlanRefusedError(
            "junction", f"plan is for {plan.junction}, this is {j.id}"
        )
    check_stages(j)
    if len(plan.greens) != len(j.stages):
        raise PlanRefusedError(
            "stages", f"expected {len(j.stages)} greens, got {len(plan.greens)}"
        )
    if plan.yellow < MIN_YELLOW_S:
        raise PlanRefusedError("yellow", f"{plan.yellow} s is under {MIN_YELLOW_S} s")
    if plan.all_red < j.min_all_red_s:
        raise PlanRefusedError(
            "all_red", f"{plan.all_red} s is under {j.min_all_red_s} s"
        )
    _check_intergreens(j, plan)
    _check_greens(j, plan)
    total = sum(plan.greens) + len(plan.greens) * plan.intergreen
    if abs(total - plan.cycle) > 1e-6:  # noqa: PLR2004
        raise PlanRefusedError(
            "cycle", f"greens and intergreens add up to {total} s, not {plan.cycle} s"
        )
    if not j.min_cycle_s <= plan.cycle <= j.max_cycle_s:
        raise PlanRefusedError(
            "cycle_bounds",
            f"{plan.cycle} s is outside {j.min_cycle_s}-{j.max_cycle_s} s",
        )
    if not 0 <= plan.offset < plan.cycle:
        raise PlanRefusedError("offset", f"{plan.offset} s is outside 0-{plan.cycle} s")


def _check_intergreens(j: Junction, plan: Plan) -> None:
    """A fixed plan's stage changes must each last the geometry's intergreen.

    An actuated plan's changes are the controller's (:func:`all_red_for`
    stretches its all-red per change); a fixed one runs its uniform
    yellow + all-red, so each change in the ring must be long enough.
    """
    if plan.actuated and not plan.coordinated:
        return
    n = len(j.stages)
    for i in range(n):
        need, a, b = transition_need(j, j.stages[i], j.stages[(i + 1) % n])
        if plan.intergreen < need - 1e-9:
            raise PlanRefusedError(
                "intergreen",
                f"expected at least {need:.1f} s from the end of {a}'s green to "
                f"{b}'s (stage {i + 1} to {(i + 1) % n + 1}), "
                f"got {plan.intergreen:.1f} s",
            )


def _check_greens(j: Junction, plan: Plan) -> None:
    for number, (green, stage) in enumerate(zip(plan.greens, j.stages, strict=True), 1):
        if green < j.min_green_s:
            raise PlanRefusedError(
                "min_green", f"stage {number} has {green} s, under {j.min_green_s} s"
            )
        for group in stage:
            if group in j.crossings_m:
                need = PED_WALK_S + j.crossings_m[group] / PED_SPEED_MPS
                if green + plan.yellow + plan.all_red < need:
                    raise PlanRefusedError(
                        "pedestrian_clearance",
                        f"stage {number} gives crossing {group} "
                        f"{green + plan.intergreen:.0f} s, it needs {need:.0f} s",
                    )


def state_at(j: Junction, plan: Plan, t: float) -> dict[str, str]:
    """Each group's signal at time ``t`` (s since the epoch of the plan's clock).

    ``G``/``g`` green, ``y`` yellow, ``r`` red. Stage 1's green starts at
    ``offset`` (mod cycle); after each stage's green, groups that lose right
    of way (or protection) show yellow, then red for the all-red.
    """
    into = (t - plan.offset) % plan.cycle
    start = 0.0
    n = len(j.stages)
    for i, (green, stage) in enumerate(zip(plan.greens, j.stages, strict=True)):
        nxt = j.stages[(i + 1) % n]
        if into < start + green:
            return {g: stage.get(g, "r") for g in j.groups}
        if into < start + green + plan.intergreen:
            yellow = into < start + green + plan.yellow
            out = {}
            for g in j.groups:
                now, then = stage.get(g), nxt.get(g)
                if now is not None and now == then:
                    out[g] = now  # keeps right of way into the next stage
                elif now is not None:
                    out[g] = "y" if yellow else "r"
                else:
                    out[g] = "r"
            return out
        start += green + plan.intergreen
    return dict.fromkeys(j.groups, "r")  # unreachable with a checked plan


def conflicting_greens(j: Junction, state: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs of groups showing right of way together that must not.

    This is the conflict monitor. Yellow counts as right of way, as a hardware monitor
    counts it; a yielding pair is allowed while one side is ``g`` or ``y``.
    """
    active = sorted(g for g, s in state.items() if s in ("G", "g", "y"))
    bad = []
    for i, a in enumerate(active):
        for b in active[i + 1 :]:
            how = j.conflict(a, b)
            soft = {state[a], state[b]} & {"g", "y"}
            if how == "never" or (how == "yield" and not soft):
                bad.append((a, b))
    return bad
