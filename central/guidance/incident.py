"""Automatic incident detection on loops and on travel times (pure).

**Loops: California algorithm #7** (Payne & Tignor, "Freeway
incident-detection algorithms based on decision trees with states",
Transportation Research Record 682, 1978), a comparative algorithm over
two detector stations, upstream ``u`` and downstream ``d``, each minute::

    OCCDF  = OCC(u) − OCC(d)            spatial occupancy difference
    OCCRDF = OCCDF / OCC(u)             its relative value
    DOCC   = OCC(d)                     downstream occupancy

    state 0 (free):       OCCDF ≥ T1 and OCCRDF ≥ T2 and DOCC < T3 → 1
    state 1 (tentative):  OCCRDF ≥ T2 → 2 (incident: alarm), else → 0
    state 2/3 (incident): OCCRDF ≥ T2 → 3 (continuing), else → 0 (cleared)

#7 replaced #2's temporal downstream test with ``DOCC < T3``, which keeps
compression waves from raising alarms, and asks for the pattern twice
(persistence) before it alarms. Baling applies it **per lane** of the two
stations of one link (the loop a junction's exit and the loop before the
next stop line): on an urban arterial a blocked lane shows first as a lane
that empties between the stations while the others take its traffic, long
before a queue reaches a station. The thresholds are calibrated for 1-minute
lane occupancies of an arterial (a few per cent, not a freeway's 20 %);
see docs/guidance.md and ``python -m bench.guidance``.

**Travel times:** a link's minute estimate against its own recent baseline
(the median of the last minutes the watch judged normal): ``ratio`` times
the baseline and ``extra_s`` more, ``persist`` minutes running.

Each detector is a state machine over values; the service keeps the states
and raises the alarms, and nothing here reads a clock.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

FREE, TENTATIVE, OCCURRED, CONTINUING = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Thresholds:
    """California #7's thresholds, and Baling's immediate branch.

    Occupancies are per cent of the minute. T1..T3 were calibrated on SUMO
    seeds 11–20 of the benchmark's arterial (``bench.guidance`` reports
    seeds 1–10). The immediate branch alarms in the first minute when the
    lane's traffic has visibly moved to the lane beside it downstream
    (``beside_now``) and the lane is busier upstream (``t1_now``); 0 turns
    it off, leaving #7 as published.
    """

    t1: float = 1.0  # OCCDF: the upstream lane is this much busier
    t2: float = 0.9  # OCCRDF: most of its occupancy is gone downstream
    t3: float = 0.5  # DOCC: the downstream lane is (almost) empty
    t1_now: float = 3.0
    t3_now: float = 0.3
    beside_now: float = 6.0

    def __post_init__(self) -> None:
        if self.t1 <= 0 or not 0 < self.t2 <= 1 or self.t3 < 0:
            raise ValueError(
                "expected t1 > 0, 0 < t2 <= 1, t3 >= 0, got "
                f"{self.t1}, {self.t2}, {self.t3}"
            )
        if min(self.t1_now, self.t3_now, self.beside_now) < 0:
            raise ValueError(
                "expected t1_now, t3_now, beside_now >= 0, got "
                f"{self.t1_now}, {self.t3_now}, {self.beside_now}"
            )


@dataclass(frozen=True, slots=True)
class Finding:
    """What one step found: a new incident, or the end of one."""

    kind: str  # raised | cleared
    evidence: dict[str, float]


def california7(
    state: int,
    occ_up: float,
    occ_down: float,
    *,
    thresholds: Thresholds,
    occ_beside: float | None = None,
) -> tuple[int, Finding | None]:
    """One minute of California #7 for one station pair (or one lane of it).

    Args:
        state: the pair's state before this minute (0..3).
        occ_up: upstream occupancy (%).
        occ_down: downstream occupancy (%).
        thresholds: T1..T3 and the immediate branch's.
        occ_beside: for one lane, the busiest other watched lane downstream
            (where its traffic went); None: no immediate branch.

    Returns:
        The new state and, on a transition to 2 or back to 0 from 2/3, a
        finding with the minute's figures as evidence.
    """
    occdf = occ_up - occ_down
    occrdf = occdf / occ_up if occ_up > 0 else 0.0
    evidence = {
        "occ_up": round(occ_up, 2),
        "occ_down": round(occ_down, 2),
        "occdf": round(occdf, 2),
        "occrdf": round(occrdf, 3),
    }
    t = thresholds
    if state == FREE:
        if (
            occ_beside is not None
            and t.beside_now > 0
            and occdf >= t.t1_now
            and occrdf >= t.t2
            and occ_down < t.t3_now
            and occ_beside >= t.beside_now
        ):
            return OCCURRED, Finding("raised", {**evidence, "occ_beside": occ_beside})
        pattern = occdf >= t.t1 and occrdf >= t.t2 and occ_down < t.t3
        return (TENTATIVE if pattern else FREE), None
    if state == TENTATIVE:
        if occrdf >= t.t2:
            return OCCURRED, Finding("raised", evidence)
        return FREE, None
    if occrdf >= t.t2:
        return CONTINUING, None
    return FREE, Finding("cleared", evidence)


@dataclass(frozen=True, slots=True)
class LaneStates:
    """California #7's state of every lane of one station pair."""

    states: dict[int, int] = field(default_factory=dict)

    def step(
        self,
        up: dict[int, float],
        down: dict[int, float],
        *,
        lanes: tuple[int, ...],
        thresholds: Thresholds,
    ) -> tuple[LaneStates, list[tuple[int, Finding]]]:
        """Advance every watched lane by one minute.

        Args:
            up: upstream occupancy per lane this minute.
            down: downstream occupancy per lane this minute.
            lanes: the lanes compared (through lanes, numbered alike at both
                stations); a lane missing at either station is held as it was.
            thresholds: T1..T3.

        Returns:
            The new states and the findings, by lane.
        """
        states = dict(self.states)
        found: list[tuple[int, Finding]] = []
        for lane in lanes:
            if lane not in up or lane not in down:
                continue
            beside = [down[o] for o in lanes if o != lane and o in down]
            new, finding = california7(
                states.get(lane, FREE),
                up[lane],
                down[lane],
                thresholds=thresholds,
                occ_beside=max(beside, default=0.0),
            )
            states[lane] = new
            if finding is not None:
                found.append((lane, finding))
        return LaneStates(states), found

    @property
    def incident(self) -> bool:
        """Whether some lane is in state 2 or 3."""
        return any(s >= OCCURRED for s in self.states.values())


@dataclass(frozen=True, slots=True)
class WatchRules:
    """When a link's travel time is an incident rather than traffic."""

    ratio: float = 1.6
    extra_s: float = 60.0
    persist: int = 2
    baseline_min: int = 15
    min_baseline: int = 5  # minutes of history before the watch judges

    def __post_init__(self) -> None:
        if self.ratio <= 1 or self.persist < 1 or self.baseline_min < 1:
            raise ValueError(
                f"expected ratio > 1, persist >= 1, baseline_min >= 1, got "
                f"{self.ratio}, {self.persist}, {self.baseline_min}"
            )


@dataclass(frozen=True, slots=True)
class TravelTimeWatch:
    """One link's travel-time baseline and how long it has been exceeded."""

    history: tuple[float, ...] = ()
    over: int = 0
    active: bool = False

    def step(
        self, seconds: float, *, rules: WatchRules
    ) -> tuple[TravelTimeWatch, Finding | None]:
        """Take one minute's estimate; say when an incident starts or ends."""
        if len(self.history) < rules.min_baseline:
            history = (*self.history, seconds)[-rules.baseline_min :]
            return replace(self, history=history), None
        baseline = statistics.median(self.history)
        high = seconds >= max(rules.ratio * baseline, baseline + rules.extra_s)
        evidence = {"seconds": round(seconds, 1), "baseline_s": round(baseline, 1)}
        if high:
            over = self.over + 1
            if over >= rules.persist and not self.active:
                return (
                    replace(self, over=over, active=True),
                    Finding("raised", evidence),
                )
            return replace(self, over=over), None
        history = (*self.history, seconds)[-rules.baseline_min :]
        if self.active:
            return TravelTimeWatch(history=history), Finding("cleared", evidence)
        return TravelTimeWatch(history=history), None
