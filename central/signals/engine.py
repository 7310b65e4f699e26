"""The signal engine: timing plans from measured flows. Pure functions.

* :func:`webster` — Webster's cycle ``C0 = (1.5 L + 5) / (1 − Y)`` and
  greens in proportion to the critical flow ratios ``y = q / s``, with
  minimum greens and whole seconds;
* :func:`optimise` — better than Webster: the cycle and splits that
  minimise Webster's own delay formula (uniform + random delay, summed over
  every lane group and weighted by its flow), searched over the allowed
  cycles with one-second moves between stages;
* :func:`green_wave` — arterial coordination (线控): a common cycle and
  offsets that maximise the two-way green bandwidth for the distances and
  the progression speed, weighted towards the peak direction;
* :func:`time_of_day` — a plan table from an hourly flow profile, merging
  neighbouring hours whose plans barely differ;
* :func:`retime` — adaptive re-timing: move a running plan towards the
  plan for the flows just measured, never by more than a bound per cycle.

A junction's stages each list their critical lane groups as
``(flow veh/h, saturation flow veh/h)``; the stage's critical flow ratio is
the largest ``q / s`` among them. A stage is *permissive* when its
movements also run, yielding, in another stage (a protected left that also
turns in the gaps of its through stage): :func:`optimise` gives it only
the flow the permissive turns leave over, which Webster's formula cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

Group = tuple[float, float]  # (flow veh/h, saturation flow veh/h)


@dataclass(frozen=True, slots=True)
class Limits:
    """What every plan must respect (the cabinet checks the same)."""

    yellow: float = 3.0
    all_red: float = 1.0
    min_green: float = 5.0
    min_cycle: float = 30.0
    max_cycle: float = 150.0
    startup_loss: float = 2.0  # s lost as a queue starts
    end_gain: float = 2.0  # s of yellow still used
    # Left turners that also go permissively (yielding, in their approach's
    # through stage) clear about this many a cycle at its end — "sneakers".
    sneakers_per_cycle: float = 2.0

    @property
    def lost_per_stage(self) -> float:
        """Lost time per stage: start-up loss plus intergreen less the end gain."""
        return self.startup_loss + self.yellow + self.all_red - self.end_gain


@dataclass(frozen=True, slots=True)
class Timing:
    """A junction's plan durations."""

    cycle: float
    greens: tuple[float, ...]
    offset: float = 0.0
    yellow: float = 3.0
    all_red: float = 1.0
    coordinated: bool = False
    actuated: bool = False  # greens are maxima; the controller gaps out early

    def as_plan(self) -> dict[str, float | bool | list[float]]:
        """The plan body a cabinet takes."""
        return {
            "cycle": self.cycle,
            "greens": list(self.greens),
            "offset": self.offset,
            "yellow": self.yellow,
            "all_red": self.all_red,
            "coordinated": self.coordinated,
            "actuated": self.actuated,
        }


def permissive_stages(stages: list[dict[str, str]]) -> frozenset[int]:
    """The stages whose every protected movement also runs permissively.

    From a junction's movement map per stage: each ``G`` of the stage is a
    ``g`` (yielding) in some other stage, as a protected left turn is.
    """
    return frozenset(
        i
        for i, stage in enumerate(stages)
        if any(v == "G" for v in stage.values())
        and all(
            any(other.get(m) == "g" for other in stages)
            for m, v in stage.items()
            if v == "G"
        )
    )


def ratios(stages: list[list[Group]]) -> list[float]:
    """Each stage's critical flow ratio (at least 0.01)."""
    return [
        max([q / s for q, s in groups if s > 0] or [0.0]) or 0.01 for groups in stages
    ]


def _whole(greens: list[float], total_s: float, minimum: float) -> tuple[float, ...]:
    """Whole seconds summing to ``total_s``, none under ``minimum``."""
    total = round(total_s)
    greens = [max(g, minimum) for g in greens]
    scale = (total - minimum * len(greens)) / max(
        sum(g - minimum for g in greens), 1e-9
    )
    exact = [minimum + (g - minimum) * scale for g in greens]
    base = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: base[i] - exact[i])
    for i in order[: total - sum(base)]:
        base[i] += 1
    return tuple(float(b) for b in base)


def _timing(cycle: int, weights: list[float], limits: Limits) -> Timing:
    n = len(weights)
    green_time = cycle - n * (limits.yellow + limits.all_red)
    total = sum(weights)
    greens = _whole(
        [green_time * w / total for w in weights], green_time, limits.min_green
    )
    return Timing(float(cycle), greens, 0.0, limits.yellow, limits.all_red)


def _bounded_cycle(c: float, n: int, limits: Limits) -> int:
    lowest = n * (limits.min_green + limits.yellow + limits.all_red)
    return round(min(max(c, limits.min_cycle, lowest), limits.max_cycle))


def webster(stages: list[list[Group]], limits: Limits = Limits()) -> Timing:
    """Webster's cycle and proportional greens (capped at ``max_cycle``)."""
    ys = ratios(stages)
    lost = len(stages) * limits.lost_per_stage
    y = sum(ys)
    c0 = (1.5 * lost + 5) / (1 - y) if y < 0.95 else limits.max_cycle  # noqa: PLR2004
    return _timing(_bounded_cycle(c0, len(stages), limits), ys, limits)


def after_sneakers(
    stages: list[list[Group]],
    permissive: frozenset[int],
    cycle: float,
    limits: Limits = Limits(),
) -> list[list[Group]]:
    """The stages' flows less what permissive turns clear at ``cycle``."""
    cleared = limits.sneakers_per_cycle * 3600 / cycle
    return [
        [(max(q - cleared, 0.0), s) for q, s in groups] if i in permissive else groups
        for i, groups in enumerate(stages)
    ]


def delay(
    timing: Timing,
    stages: list[list[Group]],
    limits: Limits = Limits(),
    permissive: frozenset[int] = frozenset(),
) -> float:
    """Flow-weighted mean Webster delay (s/veh) of a timing; inf if oversaturated."""
    if permissive:
        stages = after_sneakers(stages, permissive, timing.cycle, limits)
    total, flow = 0.0, 0.0
    for green, groups in zip(timing.greens, stages, strict=True):
        effective = green - limits.startup_loss + limits.end_gain
        lam = effective / timing.cycle
        for q, s in groups:
            if q <= 0:
                continue
            x = q / (s * lam)
            if x >= 0.98:  # noqa: PLR2004 - the formula breaks down at saturation
                return math.inf
            qs = q / 3600
            d1 = timing.cycle * (1 - lam) ** 2 / (2 * (1 - lam * x))
            d2 = x**2 / (2 * qs * (1 - x))
            d3 = 0.65 * (timing.cycle / qs**2) ** (1 / 3) * x ** (2 + 5 * lam)
            total += q * max(d1 + d2 - d3, 0.0)
            flow += q
    return total / flow if flow else 0.0


CYCLE_SCAN_PAST_S = 20  # optimise stops scanning cycles this far past the best


def optimise(
    stages: list[list[Group]],
    limits: Limits = Limits(),
    permissive: frozenset[int] = frozenset(),
) -> Timing:
    """The fixed timing with the least Webster delay (cycle and splits).

    Splits start at equal degrees of saturation for each cycle (of the flow
    left to each stage once ``permissive`` stages' turns have gone in the
    gaps); the best cycle's splits are then improved by moving whole
    seconds between stages while the delay falls.
    """

    def weights(cycle: float) -> list[float]:
        return ratios(after_sneakers(stages, permissive, cycle, limits))

    n = len(stages)
    lowest = _bounded_cycle(0, n, limits)
    best = _timing(lowest, weights(lowest), limits)
    best_d = delay(best, stages, limits, permissive)
    for cycle in range(lowest, int(limits.max_cycle) + 1, 2):
        candidate = _timing(cycle, weights(cycle), limits)
        d = delay(candidate, stages, limits, permissive)
        if d < best_d:
            best, best_d = candidate, d
        elif d > best_d and cycle - best.cycle >= CYCLE_SCAN_PAST_S:
            break  # past the optimum: delay only grows with the cycle from here
    improved = True
    while improved:
        improved = False
        for i in range(n):
            for j in range(n):
                if i == j or best.greens[j] - 1 < limits.min_green:
                    continue
                greens = list(best.greens)
                greens[i] += 1
                greens[j] -= 1
                candidate = replace(best, greens=tuple(greens))
                d = delay(candidate, stages, limits, permissive)
                if d < best_d - 1e-9:
                    best, best_d, improved = candidate, d, True
    return best


def bandwidth(
    offsets: list[float], greens: list[float], travel: list[float], cycle: float
) -> float:
    """One-way green bandwidth (s) through every junction.

    ``greens`` are the coordinated stage's greens (stage 1, which starts at
    each junction's offset); ``travel`` the times from the first junction.
    """
    step = 0.5
    n = int(cycle / step)
    ok = []
    for k in range(n):
        t = k * step
        ok.append(
            all(
                (t + ta - o) % cycle < g
                for o, g, ta in zip(offsets, greens, travel, strict=True)
            )
        )
    if all(ok):
        return cycle
    run = best = 0
    for v in ok + ok:
        run = run + 1 if v else 0
        best = max(best, run)
    return min(best, n) * step


def green_wave(
    positions_m: list[float],
    greens: list[float],
    cycle: float,
    *,
    speed_mps: float,
    peak_share: float = 0.6,
) -> list[float]:
    """Offsets (s) for a two-way green wave along an arterial.

    Maximises the outbound plus the inbound bandwidth, the inbound held
    between its share (``1 − peak_share`` against ``peak_share``) and the
    outbound's.
    Coordinate ascent in whole seconds from the ideal one-way offsets.
    """
    out_travel = [(x - positions_m[0]) / speed_mps for x in positions_m]
    in_travel = [(positions_m[-1] - x) / speed_mps for x in positions_m]
    ratio = (1 - peak_share) / peak_share

    def score(offsets: list[float]) -> float:
        b_out = bandwidth(offsets, greens, out_travel, cycle)
        b_in = bandwidth(offsets, greens, in_travel, cycle)
        short = max(0.0, ratio * b_out - b_in) + max(0.0, b_in - b_out)
        return b_out + b_in - short

    starts = [
        [round(t % cycle) * 1.0 for t in out_travel],
        [round(-t % cycle) * 1.0 for t in in_travel],
        [0.0] * len(positions_m),
        [(i % 2) * round(cycle / 2) * 1.0 for i in range(len(positions_m))],
    ]
    best_all, found = -math.inf, starts[0]
    for start in starts:
        offsets = [(o - start[0]) % cycle for o in start]
        best = score(offsets)
        improved = True
        while improved:
            improved = False
            for i in range(1, len(offsets)):
                for o in range(int(cycle)):
                    candidate = [*offsets[:i], float(o), *offsets[i + 1 :]]
                    value = score(candidate)
                    if value > best + 1e-9:
                        best, offsets, improved = value, candidate, True
        if best > best_all:
            best_all, found = best, offsets
    return found


def time_of_day(
    hourly: list[list[list[Group]]],
    limits: Limits = Limits(),
    *,
    min_change_s: float = 8,
) -> list[tuple[int, Timing]]:
    """(start hour, timing) rows from 24 hourly stage flows.

    A new row starts when the hour's optimal cycle or any green differs from
    the running row's by ``min_change_s`` or more.
    """
    rows: list[tuple[int, Timing]] = []
    for hour, stages in enumerate(hourly):
        t = optimise(stages, limits)
        if rows:
            last = rows[-1][1]
            close = abs(t.cycle - last.cycle) < min_change_s and all(
                abs(a - b) < min_change_s
                for a, b in zip(t.greens, last.greens, strict=True)
            )
            if close:
                continue
        rows.append((hour, t))
    return rows


def retime(
    current: Timing,
    stages: list[list[Group]],
    limits: Limits = Limits(),
    *,
    max_step_s: float = 4.0,
    fixed_cycle: bool = False,
    target: Timing | None = None,
    permissive: frozenset[int] = frozenset(),
) -> Timing:
    """One cycle's adaptive step: towards the optimum, at most ``max_step_s``.

    With ``fixed_cycle`` (a coordinated junction) only the splits move, so
    the green wave's offsets stay valid.
    """
    target = target or optimise(stages, limits, permissive)
    if fixed_cycle:
        target = _timing(int(current.cycle), [g or 0.01 for g in target.greens], limits)
    step = max(-max_step_s, min(max_step_s, target.cycle - current.cycle))
    cycle = _bounded_cycle(current.cycle + step, len(stages), limits)
    wanted = [
        c + max(-max_step_s, min(max_step_s, t - c))
        for c, t in zip(current.greens, target.greens, strict=True)
    ]
    green_time = cycle - len(stages) * (limits.yellow + limits.all_red)
    greens = _whole(wanted, green_time, limits.min_green)
    return Timing(
        float(cycle),
        greens,
        current.offset,
        limits.yellow,
        limits.all_red,
        current.coordinated,
        current.actuated,
    )
