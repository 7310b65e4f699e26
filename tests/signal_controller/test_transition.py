"""Stage changes group by group: who waits for whom, and what the detectors allow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.clock import ManualClock
from firmware_sim.signalctl import ControllerSim
from firmware_sim.traffic import STAGES
from signal_controller.cabinet import junction_intergreens, plan_from
from signal_controller.intergreen import four_leg_paths
from signal_controller.junction import Junction, four_leg
from signal_controller.transition import plan_change, signals_during


def junction() -> Junction:
    base = four_leg("C", STAGES["A"])
    return Junction(
        id="C",
        groups=base.groups,
        conflicts=base.conflicts,
        stages=base.stages,
        intergreens=junction_intergreens(base, four_leg_paths()),
    )


def test_each_starting_group_waits_for_its_own_conflicts_only() -> None:
    j = junction()
    ig = j.intergreens
    assert ig is not None
    change = plan_change(j, 0, 2, yellow=3.0, all_red=1.0)
    # the side street's through waits for the main street's groups it crosses
    need_ns = max(ig.need(e, "Ns") for e in ("Ws", "Es", "Wl", "El", "Wr", "Er"))
    assert change.starts["Ns"] == pytest.approx(max(need_ns, 4.0))
    # its permissive left for the left turns it crosses too
    assert change.starts["Nl"] >= ig.need("El", "Nl")
    assert change.length() == max(change.starts.values())
    # a left turner who may wait inside makes the crossing streets wait longer
    waiting = plan_change(j, 0, 2, yellow=3.0, all_red=1.0, waiting={"El", "Wl"})
    assert waiting.starts["Nl"] >= ig.need("El", "Nl", was="g") > change.starts["Nl"]


def test_a_group_that_conflicts_with_nothing_ending_starts_at_once() -> None:
    j = junction()
    # stage 1 → 2: the main street's protected lefts end; the side street's
    # right turns cross neither
    change = plan_change(j, 1, 2, yellow=3.0, all_red=1.0)
    assert change.starts["Nr"] == 0.0
    shown = signals_during(j, change, 0.0)
    assert shown["Nr"] == "G"
    assert shown["Ns"] == "r"
    assert shown["El"] == "y"


def test_a_permissive_left_becoming_protected_keeps_moving_meanwhile() -> None:
    j = junction()
    change = plan_change(j, 0, 1, yellow=3.0, all_red=1.0)
    assert change.starts["Wl"] >= 4.0  # the opposing through must clear first
    for into in (0.0, 2.0, change.starts["Wl"] - 0.1):
        shown = signals_during(j, change, into)
        assert shown["Wl"] == "g"
        assert shown["Es"] == ("y" if into < 3.0 else "r")
    assert signals_during(j, change, change.starts["Wl"])["Wl"] == "G"
    # and back: protection ends with a yellow, the opposing through waits for
    # its clearance, and the left goes again, yielding, with it
    back = plan_change(j, 1, 0, yellow=3.0, all_red=1.0)
    assert back.starts["Es"] >= j.intergreens.need("Wl", "Es")  # type: ignore[union-attr]
    assert back.start("Wl") == back.start("Es")
    assert signals_during(j, back, 0.0)["Wl"] == "y"
    assert signals_during(j, back, 3.5)["Wl"] == "r"
    assert signals_during(j, back, back.start("Es"))["Wl"] == "g"
    # with the stop-line loops: still together
    assert back.start("Wl", crossed={}) == back.start("Es", crossed={}) == 4.0


def test_the_last_crossing_seen_at_the_stop_line_starts_the_clearing() -> None:
    j = junction()
    ig = j.intergreens
    assert ig is not None
    change = plan_change(j, 0, 2, yellow=3.0, all_red=1.0)
    planned = change.start("Ns")
    # no stop-line detection: the matrices' worst case
    assert change.start("Ns", crossed=None) == planned
    # nobody crossed during those greens: only yellow + minimum all-red
    assert change.start("Ns", crossed={}) == 4.0
    # the last one crossed 2 s before the end of green: t_z − t_ü − 2, or the floor
    crossed = dict.fromkeys(("Ws", "Es", "Wr", "Er"), -2.0)
    want = max(4.0, max(ig.need(e, "Ns") for e in crossed) - 3.0 - 2.0)
    assert change.start("Ns", crossed=crossed) == pytest.approx(want)
    # one crossed late in the yellow: its clearing runs from there, never
    # past the matrix
    late = {"Es": 2.9}
    assert change.start("Ns", crossed=late) == pytest.approx(
        max(4.0, ig.need("Es", "Ns") - 0.1)
    )
    assert change.start("Ns", crossed={"Es": 10.0}) == planned


def test_a_waiting_left_turner_holds_the_crossing_streets_until_seen_gone() -> None:
    j = junction()
    ig = j.intergreens
    assert ig is not None
    change = plan_change(j, 0, 2, yellow=3.0, all_red=1.0, waiting={"El", "Wl"})
    planned = change.start("Nl")
    assert planned >= ig.need("El", "Nl", was="g")
    # stop-line detection alone cannot tell whether one waits inside
    assert change.start("Nl", crossed={"El": 1.0}) == planned
    # the box seen empty at 5 s (and the other left's at 3 s): from then on
    cleared = {"El": 5.0, "Wl": 3.0}
    assert change.start("Nl", crossed={"El": 1.0}, cleared=cleared) == pytest.approx(
        max(5.0, ig.need("El", "Nl") - 3.0 + 1.0)
    )
    # still occupied: the matrices hold
    assert change.start("Nl", crossed={}, cleared={"Wl": 3.0}) == planned
    # seen empty late: never past the permissive matrix
    late = {"El": 30.0, "Wl": 30.0}
    assert change.start("Nl", crossed={}, cleared=late) == planned


def run_controller(
    *, box_clear_at: float | None, turner: bool = False
) -> dict[str, float]:
    """When each group first shows green after the controller leaves stage 1.

    One main-street vehicle crosses early in the green; one waits on the side
    street; the left turners' box is occupied until ``box_clear_at``
    (no box detector: ``None``); with ``turner`` a left turner crossed its
    stop line during the green.
    """
    j = junction()
    clock = ManualClock(datetime(2026, 11, 30, tzinfo=UTC))
    sim = ControllerSim(j, clock=clock)
    for lane, weights, groups in (
        ("W0", {0: 1.0}, {"Ws"}),
        ("N0", {2: 1.0}, {"Ns"}),
        ("W2", {0: 0.5, 1: 1.0}, {"Wl"}),
    ):
        sim.zones.wire(lane, weights)
        sim.lane_groups[lane] = frozenset(groups)
    sim.pending = plan_from(j, "v1", {"greens": [20, 6, 12, 6], "actuated": True})
    first: dict[str, float] = {}
    try:
        for t in range(40):
            now = clock.monotonic()
            if t == 0:
                sim.detect("W0", now, entered=1)
                sim.detect("N0", now, entered=1, occupied=True)
            if t == 2:
                sim.detect("W0", now, left=1)
                if turner:
                    sim.detect("W2", now, entered=1, left=1)
            if box_clear_at is not None:
                sim.detect_box("Wl", occupied=t < box_clear_at)
            for g, shown in sim.states(now).items():
                if shown in "Gg" and g[0] in "NS":
                    first.setdefault(g, float(t))
            clock.advance(1)
    finally:
        sim.stop()
    return first


def test_the_controller_starts_the_side_street_as_soon_as_it_saw_it_clear() -> None:
    j = junction()
    ig = j.intergreens
    assert ig is not None
    # the main street's green ends at its minimum (5 s: nobody left on it);
    # its last vehicle crossed at 2 s: only yellow + all-red stand between
    seen = run_controller(box_clear_at=0.0)
    assert seen["Ns"] == 5 + 4
    # a left turner inside until 12 s holds the streets it crosses till then
    held = run_controller(box_clear_at=12.0)
    assert held["Ns"] == 12
    # without a box detector, a turner who crossed may still be inside: the
    # permissive matrix; none crossed: nobody to wait for
    blind = run_controller(box_clear_at=None, turner=True)
    assert blind["Ns"] >= 5 + ig.need("Wl", "Ns", was="g")
    assert run_controller(box_clear_at=None)["Ns"] == 5 + 4
