"""Stage changes signal group by signal group, as RiLSA times them.

Pure. A change from one stage to another is not one block of yellow and
all-red for everybody: each group whose green ends shows its yellow, and
each group whose green starts waits only for the groups it truly conflicts
with, each pair by its own intergreen (:mod:`signal_controller.intergreen`)
from the end of that group's green. So a group that conflicts with nothing
that ends starts at once, and a left turn that goes from permissive (``g``)
to protected (``G``) keeps moving, yielding, until the opposing through
traffic has cleared — it never sees a yellow and a red in between. A group
whose protection ends but keeps yielding right of way (``G`` → ``g``) shows
its yellow and red like any ending group and goes again, yielding, with the
groups it yields to (which wait for its protected intergreen): a turner
entering meanwhile would find nobody to yield to and still be inside when
they start.

The matrices assume the worst: the last vehicle crossed its stop line at
the end of the crossing time ``t_ü`` (the yellow), and a permissive left
turner may still be waiting inside. A controller that sees more may use
it, never to wait longer than the matrices and never shorter than the
yellow and the junction's minimum all-red between conflicting groups:

* ``crossed``: when the ending group's last vehicle actually crossed its
  stop-line loop, relative to the end of its green (its signal is red after
  the yellow, so none comes later). The formula's clearing then runs from
  that moment: ``t_z − t_ü + t_crossed``; a group none of whose vehicles
  crossed during its green leaves nobody to clear.
* ``cleared``: when a presence detector over a permissive left turn's course
  through the box was first seen empty with its signal red: no turner of
  that group is inside any more, none can come.

The controller keeps the clock and decides *when* to change and to which
stage; this module says who shows what during the change
(:func:`plan_change`, :meth:`Change.start`, :func:`signals_during`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from signal_controller.junction import Junction


@dataclass(frozen=True, slots=True)
class Pair:
    """What a starting group waits for after one ending group.

    ``protected``: the protected matrix's intergreen; ``waiting``: the
    permissive one where a left turner may wait inside (else ``None``).
    """

    protected: float
    waiting: float | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One stage change: when each group that starts (or turns protected) goes.

    ``starts``: seconds after the ending greens end, as the matrices give
    them (the latest any group goes); ``pairs``: for each starting group,
    the ending groups it conflicts with and their intergreens; ``floor``:
    yellow + minimum all-red, the least between two conflicting groups;
    ``after``: a group going from protected to permissive, and the starting
    groups it yields to, with which it goes again.
    """

    src: int
    dst: int
    yellow: float
    floor: float
    crossing_s: float
    starts: dict[str, float]
    pairs: dict[str, dict[str, Pair]] = field(default_factory=dict)
    after: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def start(
        self,
        group: str,
        *,
        crossed: Mapping[str, float] | None = None,
        cleared: Mapping[str, float] | None = None,
    ) -> float:
        """When ``group`` goes, given what the detectors saw.

        Args:
            group: a group of the new stage.
            crossed: for each ending group whose vehicles crossed its stop
                line during its green, when the last did (seconds from the
                end of its green); ``None``: no stop-line detection, the
                matrices' assumption holds.
            cleared: for each permissive group with a presence detector
                over its course, when it was first seen empty after the
                yellow (seconds into the change).

        Returns:
            Seconds into the change; never later than :attr:`starts` says.
        """
        if group in self.after:  # yielding again once those it yields to go
            return max(
                [
                    0.0,
                    *(
                        self.start(x, crossed=crossed, cleared=cleared)
                        for x in self.after[group]
                    ),
                ]
            )
        planned = self.starts.get(group, 0.0)
        pairs = self.pairs.get(group)
        if not pairs or (crossed is None and not cleared):
            return planned
        seen = self.floor
        for ending, pair in pairs.items():
            need = pair.protected
            if crossed is not None:
                last = crossed.get(ending)
                need = 0.0 if last is None else need - self.crossing_s + last
            if pair.waiting is not None:
                if cleared is None or ending not in cleared:
                    return planned  # a turner may still wait inside
                need = max(need, cleared[ending])
            seen = max(seen, need)
        return min(planned, seen)

    def length(
        self,
        *,
        crossed: Mapping[str, float] | None = None,
        cleared: Mapping[str, float] | None = None,
    ) -> float:
        """Seconds from the end of the old greens to the new stage's full green."""
        return max(
            [
                self.yellow,
                *(self.start(g, crossed=crossed, cleared=cleared) for g in self.starts),
            ]
        )


def plan_change(
    j: Junction,
    src: int,
    dst: int,
    *,
    yellow: float,
    all_red: float,
    waiting: Collection[str] = (),
) -> Change:
    """When each group of stage ``dst`` may show its green after stage ``src``.

    Args:
        j: the junction (its intergreen matrices; without them, the plan's
            uniform yellow + ``all_red`` between conflicting groups).
        src: the running stage's index.
        dst: the next stage's index.
        yellow: the yellow every ending group shows.
        all_red: the least all-red between two conflicting groups.
        waiting: groups ending permissively behind which a left turner may
            still wait inside the junction (their permissive matrix counts).

    Returns:
        The change, every starting group's wait from the end of the greens.
    """
    old, new = j.stages[src], j.stages[dst]
    ending = {g: s for g, s in old.items() if new.get(g) != s}
    floor = yellow + all_red
    starts: dict[str, float] = {}
    pairs: dict[str, dict[str, Pair]] = {}
    for g, state in new.items():
        was = old.get(g)
        if was == state:
            continue
        if was == "G" and state == "g":
            continue  # goes with the groups it yields to (below)
        mine = _pairs(j, g, ending, waiting)
        starts[g] = max(
            [0.0, *(max(p.protected, p.waiting or 0.0, floor) for p in mine.values())]
        )
        if mine:
            pairs[g] = mine
    after: dict[str, tuple[str, ...]] = {}
    for g, state in new.items():
        if old.get(g) == "G" and state == "g":
            after[g] = tuple(x for x in starts if j.conflict(g, x) == "yield")
            starts[g] = max([0.0, *(starts[x] for x in after[g])])
    crossing = j.intergreens.crossing_s if j.intergreens else yellow
    return Change(src, dst, yellow, floor, crossing, starts, pairs, after)


def _pairs(
    j: Junction, group: str, ending: Mapping[str, str], waiting: Collection[str]
) -> dict[str, Pair]:
    """The ending groups ``group`` conflicts with, and what it waits for each."""
    out = {}
    for e, e_was in ending.items():
        if e == group:
            continue
        protected = j.intergreens.need(e, group) if j.intergreens else 0.0
        pair = Pair(protected)
        if e_was == "g" and e in waiting and j.intergreens:
            need = j.intergreens.need(e, group, was="g")
            if need > protected:
                pair = Pair(protected, need)
        if j.conflict(e, group) is not None or pair.protected > 0 or pair.waiting:
            out[e] = pair
    return out


def signals_during(
    j: Junction,
    change: Change,
    into: float,
    *,
    crossed: Mapping[str, float] | None = None,
    cleared: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Every group's signal ``into`` seconds after the old stage's greens ended.

    Groups that keep their signal keep it; a group that loses right of way
    shows yellow, then red; a starting group shows red (or, going from
    permissive to protected, its permissive green) until its start
    (``crossed`` and ``cleared`` as in :meth:`Change.start`).
    """
    old, new = j.stages[change.src], j.stages[change.dst]
    out = {}
    for g in j.groups:
        was, then = old.get(g), new.get(g)
        if then is not None and into >= change.start(
            g, crossed=crossed, cleared=cleared
        ):
            out[g] = then
        elif was is not None and was == then:
            out[g] = was
        elif was == "g" and then == "G":
            out[g] = "g"  # still yielding until the opposing traffic has cleared
        elif was is not None and into < change.yellow:
            out[g] = "y"
        else:
            out[g] = "r"
    return out
