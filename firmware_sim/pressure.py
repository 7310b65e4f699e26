"""Which stage gets the green next: max-pressure over detector zones.

Pure. The junction's local adaptive control (Varaiya's max-pressure,
acyclic, on the junction's own stage table). Every lane has a **zone**
between an advance loop (about 60 m upstream) and a stop-line loop: a
vehicle over the advance loop enters it, one over the stop-line loop
leaves it, so the zone's count is the lane's queue plus what is about to
join it. A stage's **pressure** is the sum of its lanes' counts, weighted
1 where the stage gives them protected right of way and 0.5 where it lets
them go permissively (a left turn yielding to the opposing through).

:func:`choose` is asked after the minimum green and then every slot: the
stage with the greatest pressure takes over if it beats the running one;
at the maximum green (from central's plan, re-timed within its bound) the
running stage gives way to whoever waits. With no one waiting anywhere
the green rests. The controller keeps the clock:
minimum green, slots, maxima and every intergreen.

A vehicle standing on a stop-line loop adds its waiting time to its
stage's pressure (one vehicle per ``age_s``), so a queue past the advance
loop, which the count cannot see, still gets its turn.

Counting errors heal: a vehicle that changes lane between the loops is
counted into one zone and out of another. A vehicle standing on a stop-line
loop always calls its green, counted or not. When a green lane's stop-line
loop has been quiet for ``heal_s`` no queue is left there, so its count
is cut to the vehicles that entered within ``heal_s`` (still on their way).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

PERMISSIVE_WEIGHT = 0.5


@dataclass
class Zone:
    """One lane's stretch between its advance and stop-line loops."""

    weights: dict[int, float]  # stage -> how much its count presses there
    count: int = 0
    waiting: bool = False  # a vehicle stands on the stop-line loop
    last_out: float = float("-inf")
    stand_since: float = float("inf")  # a vehicle stands on the stop line since
    entries: deque[float] = field(default_factory=lambda: deque(maxlen=64))


def lane_weights(groups: set[str], stages: list[dict[str, str]]) -> dict[int, float]:
    """A lane's weight in each stage: 1 protected (``G``), 0.5 permissive (``g``)."""
    out: dict[int, float] = {}
    for i, stage in enumerate(stages):
        shown = {stage.get(g) for g in groups}
        if "G" in shown:
            out[i] = 1.0
        elif "g" in shown:
            out[i] = PERMISSIVE_WEIGHT
    return out


class Pressure:
    """The zones of one junction and the pressure they put on each stage."""

    def __init__(self, *, heal_s: float = 6.0, age_s: float = 20.0) -> None:
        self.zones: dict[str, Zone] = {}
        self.heal_s = heal_s
        self.age_s = age_s  # 0: waiting time adds nothing

    def wire(self, zone: str, weights: dict[int, float]) -> None:
        """Connect a lane's loop pair (``zone``) to the stages it presses on."""
        self.zones[zone] = Zone(dict(weights))

    def entered(self, zone: str, t: float, n: int = 1) -> None:
        """``n`` vehicles crossed the advance loop at ``t``."""
        z = self.zones.get(zone)
        if z is None:
            return
        z.count += n
        z.entries.extend([t] * n)

    def left(self, zone: str, t: float, n: int = 1) -> None:
        """``n`` vehicles crossed the stop-line loop at ``t``."""
        z = self.zones.get(zone)
        if z is None:
            return
        z.count = max(0, z.count - n)
        z.last_out = t

    def standing(self, zone: str, *, occupied: bool, t: float | None = None) -> None:
        """Whether a vehicle stands on the zone's stop-line loop now (at ``t``).

        One that joined the lane past its advance loop (a late lane change)
        was never counted in; standing there it still calls its green.
        """
        z = self.zones.get(zone)
        if z is not None:
            if occupied and not z.waiting and t is not None:
                z.stand_since = t
            z.waiting = occupied

    def heal(self, green: int, green_since: float, now: float) -> None:
        """Cut stale counts on the lanes the running stage serves (protected)."""
        quiet_from = now - self.heal_s
        if green_since > quiet_from:
            return
        for z in self.zones.values():
            if z.weights.get(green) == 1.0 and z.last_out <= quiet_from:
                recent = sum(1 for t in z.entries if t > quiet_from)
                z.count = min(z.count, recent)

    def crossed_permissive(self, stage: int, since: float) -> bool:
        """Whether a vehicle crossed a stop line where ``stage`` lets it go yielding.

        Such a left turner may still wait inside the junction for a gap.
        """
        return any(
            0 < z.weights.get(stage, 0.0) < 1.0 and z.last_out >= since
            for z in self.zones.values()
        )

    def protecting(self, stage: int) -> int | None:
        """The stage that protects the turns ``stage`` lets go yielding, if any."""
        votes: dict[int, int] = {}
        for z in self.zones.values():
            if 0 < z.weights.get(stage, 0.0) < 1.0:
                for k, w in z.weights.items():
                    if w == 1.0:
                        votes[k] = votes.get(k, 0) + 1
        return max(votes, key=lambda k: votes[k]) if votes else None

    def serving(self, stage: int, *, least: float = 1.0) -> int:
        """Vehicles the green of ``stage`` serves now (lanes weighted ≥ ``least``)."""
        return sum(
            max(z.count, 1) if z.waiting else z.count
            for z in self.zones.values()
            if z.weights.get(stage, 0.0) >= least
        )

    def of(self, stages: int, now: float | None = None) -> list[float]:
        """Each stage's pressure ``now``.

        With ``now``, a vehicle standing on a stop-line loop that nobody has
        crossed since it stopped adds one vehicle per ``age_s`` it has waited
        to the stage that protects it: a queue longer than the loops can
        count (a left turn yielding to heavy opposing traffic) is not starved.
        """
        out = [0.0] * stages
        for z in self.zones.values():
            count = max(z.count, 1) if z.waiting else z.count
            if self.age_s and now is not None and z.waiting:
                waited = now - max(z.stand_since, z.last_out)
                for stage, w in z.weights.items():
                    if w == 1.0 and stage < stages and waited > 0:
                        out[stage] += waited / self.age_s
            for stage, w in z.weights.items():
                if stage < stages:
                    out[stage] += w * count
        return out


def choose(
    pressure: list[float],
    current: int,
    *,
    at_max: bool,
    ring: bool = False,
    serving: int | None = None,
    bias: float = 0.0,
) -> int | None:
    """The stage to change to from ``current``, or ``None`` to stay.

    Asked at the controller's decision points (the minimum green, then
    every slot, and the maximum green: ``at_max``). Max-pressure decides
    *when* to leave; with ``ring`` the next stage is the first one after
    ``current`` in the ring that anyone waits for (empty stages skipped),
    not the one under most pressure: jumping across the ring costs a
    long intergreen (a permissive left turner waiting inside the
    junction must clear), going round it the short ones.

    With ``serving`` (the vehicles the running green still has coming over
    its loops) the green is held while it serves anyone, unless another
    stage's pressure leads by more than ``bias`` — every change costs its
    intergreen, so a green that still discharges is not cut for a small
    lead — and ends as soon as it serves nobody and anyone waits elsewhere.
    """
    n = len(pressure)
    others = [k for k in range(n) if k != current]
    if not others:
        return None
    # ties go to the stage that comes next in the ring
    best = max(others, key=lambda k: (pressure[k], -((k - current) % n)))
    if pressure[best] <= 0:
        return None  # nobody waits: rest in green
    if serving is not None:
        if serving and not at_max and pressure[best] <= pressure[current] + bias:
            return None
    elif not (at_max or pressure[best] > pressure[current]):
        return None
    if ring:
        return next(
            k for k in ((current + i) % n for i in range(1, n)) if pressure[k] > 0
        )
    return best
