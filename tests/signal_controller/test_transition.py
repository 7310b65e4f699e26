"""Stage changes group by group: who waits for whom, and what the detectors allow."""

from __future__ import annotations

import pytest

from firmware_sim.traffic import STAGES
from signal_controller.cabinet import junction_intergreens
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
    # and back: protection ends at once, the throughs wait for its clearance
    back = plan_change(j, 1, 0, yellow=3.0, all_red=1.0)
    assert back.starts["Wl"] == 0.0
    assert signals_during(j, back, 0.0)["Wl"] == "g"
    assert back.starts["Es"] >= j.intergreens.need("Wl", "Es")  # type: ignore[union-attr]


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
