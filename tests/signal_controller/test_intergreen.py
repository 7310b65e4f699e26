"""Intergreens from the geometry: the formula, the matrices, and who enforces them."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sumolib
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.clock import ManualClock
from firmware_sim.signalctl import ControllerSim
from firmware_sim.traffic import STAGES, link_paths
from signal_controller.cabinet import junction_intergreens, load_junction, plan_from
from signal_controller.intergreen import (
    GeometryError,
    Speeds,
    derive,
    formula,
    four_leg_paths,
    waiting_formula,
)
from signal_controller.intergreen import (
    Path as LanePath,
)
from signal_controller.junction import (
    Junction,
    PlanRefusedError,
    four_leg,
    intergreen_table,
    state_at,
    transition_need,
)

JUDGE_A = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "bench"
    / "sumo"
    / "scenarios"
    / "A"
)


def test_the_rilsa_formula_by_hand() -> None:
    # t_z = t_ü + (s_0 + l_Fz)/v_r − s_e/v_e = 3 + (20 + 6)/10 − 5.55/11.1
    assert formula(20.0, 5.55, clearing_mps=10.0, speeds=Speeds()) == pytest.approx(5.1)
    # turning: v_r 7 m/s: 3 + (8 + 6)/7 − 0 = 5
    assert formula(8.0, 0.0, clearing_mps=7.0, speeds=Speeds()) == pytest.approx(5.0)
    # never below zero: a far entering distance
    assert formula(0.0, 200.0, clearing_mps=10.0, speeds=Speeds()) == 0.0
    # a left turner waiting at 8 m, released at 4 s, from rest at 2 m/s²:
    # 4 + √(2·(20 − 8 + 6)/2) = 4 + √18
    assert waiting_formula(
        20.0, 0.0, wait_m=8.0, release_s=4.0, speeds=Speeds()
    ) == pytest.approx(4 + math.sqrt(18))


def test_two_crossing_straight_paths_by_hand() -> None:
    # A runs along y = 0 from x = -10, B along x = 0 from y = -10; centre lines
    # closer than 2.5 m from x = -2 to 2 (0.5 m samples): A clears at 12 m,
    # B enters at 8 m: 3 + (12 + 6)/10 − 8/11.1 = 4.079 → 4.1 (rounded up)
    a = LanePath("Ws", ((-10.0, 0.0), (10.0, 0.0)))
    b = LanePath("Ss", ((0.0, -10.0), (0.0, 10.0)))
    m = derive([a, b], [("Ws", "Ss")])
    assert m.protected == {("Ws", "Ss"): 4.1, ("Ss", "Ws"): 4.1}
    assert m.need("Ws", "Ss") == 4.1
    assert m.need("Ws", "Ns") == 0.0  # not in the geometry: no constraint
    # paths that never meet give nothing
    far = LanePath("Es", ((-10.0, 50.0), (10.0, 50.0)))
    assert derive([far, b], [("Es", "Ss")]).protected == {}


def test_a_bad_path_is_refused_with_what_was_wrong() -> None:
    with pytest.raises(GeometryError, match="expected at least 2 points for Ws"):
        LanePath("Ws", ((0.0, 0.0),))
    with pytest.raises(GeometryError, match="expected a wait within"):
        LanePath("Wl", ((0.0, 0.0), (10.0, 0.0)), wait_m=12.0)
    with pytest.raises(GeometryError, match="expected ≥ 1 lane"):
        four_leg_paths(lanes_in=0)


def sumo_junction() -> Junction:
    net = sumolib.net.readNet(str(JUDGE_A / "net_static.net.xml"), withInternal=True)
    links = [tuple(x) for x in json.loads((JUDGE_A / "links.json").read_text())["C"]]
    paths = link_paths(net, "C", links)
    base = four_leg("C", STAGES["A"])
    return Junction(
        id="C",
        groups=base.groups,
        conflicts=base.conflicts,
        stages=base.stages,
        intergreens=junction_intergreens(base, paths),
    )


@pytest.mark.skipif(not JUDGE_A.exists(), reason="the SUMO judge is not here")
def test_the_matrix_of_sumo_scenario_a_from_its_internal_lanes() -> None:
    j = sumo_junction()
    assert j.intergreens is not None
    table = intergreen_table(j)
    # every crossing pair of straight movements and of left turns is there
    for a, b in (("Ws", "Ns"), ("Ns", "Ws"), ("El", "Nl"), ("Nl", "El")):
        assert f"{a}>{b}" in table
    # symmetric junction: the same numbers round it
    assert table["Ws>Ns"] == table["Es>Ss"] == table["Ns>Es"] == table["Ss>Ws"]
    # a left turner still waiting inside needs longer than one driving through
    assert table["El(g)>Ns"] > table["El>Ns"] >= 3.0
    # no pair needs more than a few seconds of all-red beyond a 3 s yellow
    assert max(j.intergreens.protected.values()) < 8
    # skipping the protected left (stage 1 → 3) costs more than going round
    assert transition_need(j, j.stages[0], j.stages[2])[0] > max(
        transition_need(j, j.stages[0], j.stages[1])[0],
        transition_need(j, j.stages[1], j.stages[2])[0],
    )


def junction_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "id": "C",
                "stages": STAGES["A"],
                "geometry": {"lanes_in": 3, "lanes_out": 3, "lane_m": 3.2},
                "fallback": [{"from": "00:00", "greens": [20, 6, 12, 6], "all_red": 4}],
            }
        ),
        encoding="utf-8",
    )
    return path


def test_the_cabinet_refuses_a_plan_whose_intergreens_are_shorter(
    tmp_path: Path,
) -> None:
    junction, _ = load_junction(junction_file(tmp_path))
    assert junction.intergreens is not None
    need = max(
        transition_need(junction, junction.stages[i], junction.stages[(i + 1) % 4])[0]
        for i in range(4)
    )
    with pytest.raises(PlanRefusedError) as refused:
        plan_from(junction, "v1", {"greens": [20, 6, 12, 6], "yellow": 3, "all_red": 1})
    assert refused.value.rule == "intergreen"
    assert "expected at least" in refused.value.detail
    assert "got 4.0 s" in refused.value.detail
    # long enough: accepted; actuated: the controller stretches each change
    ok = plan_from(
        junction,
        "v2",
        {"greens": [20, 6, 12, 6], "yellow": 3, "all_red": math.ceil(need - 3)},
    )
    assert ok.intergreen >= need
    plan_from(junction, "v3", {"greens": [20, 6, 12, 6], "actuated": True})


@settings(max_examples=25, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 3), st.integers(0, 3)),
        min_size=60,
        max_size=240,
    ),
    greens=st.tuples(*[st.integers(5, 30)] * 4),
)
def test_actuated_control_never_starts_a_conflicting_green_within_the_intergreen(
    arrivals: list[tuple[int, int, int]], greens: tuple[int, int, int, int]
) -> None:
    """Whatever max-pressure picks, a green starts after its conflicts' intergreens."""
    j = sumo_junction() if JUDGE_A.exists() else None
    if j is None:
        base = four_leg("C", STAGES["A"])
        j = Junction(
            id="C",
            groups=base.groups,
            conflicts=base.conflicts,
            stages=base.stages,
            intergreens=junction_intergreens(base, four_leg_paths()),
        )
    assert j.intergreens is not None
    clock = ManualClock(datetime(2026, 11, 30, tzinfo=UTC))
    sim = ControllerSim(j, clock=clock)
    lanes = {  # a through lane per approach, a left lane per approach
        "Ws": {0: 1.0}, "Es": {0: 1.0}, "Ns": {2: 1.0}, "Ss": {2: 1.0},
        "Wl": {0: 0.5, 1: 1.0}, "El": {0: 0.5, 1: 1.0},
        "Nl": {2: 0.5, 3: 1.0}, "Sl": {2: 0.5, 3: 1.0},
    }  # fmt: skip
    names = list(lanes)
    for name, weights in lanes.items():
        sim.zones.wire(name, weights)
    step = 0.5
    try:
        sim.pending = plan_from(
            j, "v1", {"greens": [float(g) for g in greens], "actuated": True}
        )
        ended: dict[str, float] = {}  # group -> its last end of green
        before = dict.fromkeys(j.groups, "r")
        for lane, n_in, n_out in arrivals:
            for k in range(int(1 / step)):
                now = clock.monotonic()
                if k == 0:
                    sim.detect(names[lane], now, entered=n_in, left=n_out)
                shown = sim.states(now)
                for g in j.groups:
                    was, is_ = before[g], shown[g]
                    if was in "Gg" and is_ not in "Gg":
                        ended[g] = now
                    if is_ in "Gg" and was not in "Gg":
                        for a, t_end in ended.items():
                            # the protected matrix bounds both (a permissive
                            # end needs longer only with a turner inside)
                            need = j.intergreens.need(a, g, was="G")
                            assert now - t_end >= need - step, (a, g, now, t_end)
                before = shown
                clock.advance(step)
    finally:
        sim.stop()


@settings(max_examples=30, deadline=None)
@given(
    greens=st.tuples(*[st.integers(5, 40)] * 4),
    all_red=st.integers(1, 8),
)
def test_a_fixed_plan_the_cabinet_accepts_keeps_every_intergreen(
    greens: tuple[int, int, int, int], all_red: int
) -> None:
    base = four_leg("C", STAGES["A"])
    j = Junction(
        id="C",
        groups=base.groups,
        conflicts=base.conflicts,
        stages=base.stages,
        intergreens=junction_intergreens(base, four_leg_paths()),
    )
    assert j.intergreens is not None
    try:
        plan = plan_from(j, "v", {"greens": list(greens), "all_red": all_red})
    except PlanRefusedError as exc:
        assert exc.rule in {"intergreen", "cycle_bounds"}  # noqa: PT017
        return
    ended: dict[str, tuple[float, str]] = {}
    before = state_at(j, plan, 0.0)
    t = 0.0
    while t < 2 * plan.cycle:
        shown = state_at(j, plan, t)
        for g in j.groups:
            if before[g] in "Gg" and shown[g] not in "Gg":
                ended[g] = (t, before[g])
            if shown[g] in "Gg" and before[g] not in "Gg":
                for a, (t_end, was) in ended.items():
                    assert t - t_end >= j.intergreens.need(a, g, was=was) - 0.5
        before = shown
        t += 0.5
