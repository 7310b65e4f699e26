"""The cabinet's safety rules: no plan it accepts ever shows conflicting greens."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signal_controller.junction import (
    Junction,
    Plan,
    PlanRefusedError,
    check_plan,
    conflicting_greens,
    four_leg,
    state_at,
)

# The benchmark's junction A: EW through (permissive left), EW left,
# NS through (permissive left), NS left.
STAGES = [
    {"Es": "G", "Er": "G", "Ws": "G", "Wr": "G", "El": "g", "Wl": "g"},
    {"El": "G", "Wl": "G"},
    {"Ns": "G", "Nr": "G", "Ss": "G", "Sr": "G", "Nl": "g", "Sl": "g"},
    {"Nl": "G", "Sl": "G"},
]
JUNCTION = four_leg("C", STAGES, crossings_m={})


def plan(**kw: object) -> Plan:
    values: dict[str, object] = {
        "junction": "C",
        "version": "v1",
        "greens": (30.0, 8.0, 15.0, 6.0),
        "cycle": 75.0,
        "offset": 0.0,
    }
    values.update(kw)
    return Plan(**values)  # type: ignore[arg-type]


def test_a_good_plan_runs_its_stages_with_intergreens() -> None:
    p = plan()
    check_plan(JUNCTION, p)
    assert state_at(JUNCTION, p, 0)["Ws"] == "G"
    assert state_at(JUNCTION, p, 0)["Wl"] == "g"
    at_yellow = state_at(JUNCTION, p, 31)
    assert at_yellow["Ws"] == "y"
    assert at_yellow["Wl"] == "y"  # loses its permissive green to a protected one
    assert state_at(JUNCTION, p, 33.5)["Ws"] == "r"  # all-red
    assert state_at(JUNCTION, p, 34)["Wl"] == "G"
    assert state_at(JUNCTION, p, 75)["Ws"] == "G"  # the next cycle


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"junction": "J9"}, "junction"),
        ({"greens": (30.0, 8.0, 15.0)}, "stages"),
        ({"yellow": 2.0, "cycle": 71.0}, "yellow"),
        ({"all_red": 0.0, "cycle": 71.0}, "all_red"),
        ({"greens": (30.0, 3.0, 15.0, 6.0), "cycle": 70.0}, "min_green"),
        ({"cycle": 80.0}, "cycle"),
        ({"greens": (150.0, 8.0, 15.0, 6.0), "cycle": 195.0}, "cycle_bounds"),
        ({"offset": 75.0}, "offset"),
    ],
)
def test_every_invalid_plan_is_refused_with_its_rule(
    change: dict[str, object], rule: str
) -> None:
    with pytest.raises(PlanRefusedError) as refused:
        check_plan(JUNCTION, plan(**change))
    assert refused.value.rule == rule


def test_pedestrian_clearance_and_conflicting_stage_tables() -> None:
    peds = Junction(
        id="C",
        groups=(*JUNCTION.groups, "PN"),
        conflicts={**JUNCTION.conflicts, frozenset(("PN", "Ns")): "never"},
        stages=({**STAGES[0], "PN": "G"}, *STAGES[1:]),
        crossings_m={"PN": 30.0},  # 7 s walk + 25 s to clear
    )
    with pytest.raises(PlanRefusedError, match="pedestrian_clearance"):
        check_plan(peds, plan(greens=(20.0, 8.0, 15.0, 6.0), cycle=65.0))
    check_plan(peds, plan(greens=(28.0, 8.0, 15.0, 6.0), cycle=73.0))
    bad = four_leg("C", [{"Ws": "G", "Ns": "G"}, STAGES[1]])
    with pytest.raises(PlanRefusedError, match="conflict: stage 1 shows Ns and Ws"):
        check_plan(bad, plan(greens=(20.0, 8.0), cycle=36.0))
    protected_both = four_leg("C", [{"Ws": "G", "El": "G"}, STAGES[1]])
    with pytest.raises(PlanRefusedError, match="conflict"):
        check_plan(protected_both, plan(greens=(20.0, 8.0), cycle=36.0))


GROUPS = JUNCTION.groups
stage = st.dictionaries(st.sampled_from(GROUPS), st.sampled_from("Gg"), min_size=1)


@settings(max_examples=300, deadline=None)
@given(
    stages=st.lists(stage, min_size=2, max_size=5),
    greens=st.lists(st.floats(0, 90), min_size=2, max_size=5),
    clearance=st.tuples(st.floats(2, 6), st.floats(0, 3)),
    offset=st.floats(0, 200),
    samples=st.lists(st.floats(0, 1000), min_size=1, max_size=40),
)
def test_no_accepted_plan_ever_shows_conflicting_greens(
    stages: list[dict[str, str]],
    greens: list[float],
    clearance: tuple[float, float],
    offset: float,
    samples: list[float],
) -> None:
    yellow, all_red = clearance
    junction = four_leg("C", stages)
    greens = [round(g) for g in greens[: len(stages)]]
    cycle = sum(greens) + len(greens) * (yellow + all_red)
    candidate = plan(
        greens=tuple(float(g) for g in greens),
        cycle=cycle,
        offset=offset,
        yellow=yellow,
        all_red=all_red,
    )
    try:
        check_plan(junction, candidate)
    except PlanRefusedError:
        return  # refused plans never reach the controller
    for t in [*samples, *(x / 2 for x in range(int(cycle * 2) + 2))]:
        assert conflicting_greens(junction, state_at(junction, candidate, t)) == []


def test_the_monitor_sees_conflicts_a_faulty_controller_shows() -> None:
    shown = dict.fromkeys(GROUPS, "r") | {"Ws": "G", "Ns": "G", "El": "G", "Es": "G"}
    assert conflicting_greens(JUNCTION, shown) == [
        ("El", "Ns"),
        ("El", "Ws"),  # a protected left across a protected through
        ("Es", "Ns"),
        ("Ns", "Ws"),
    ]
    shown["El"] = "g"  # permissive: it yields, allowed
    assert ("El", "Ws") not in conflicting_greens(JUNCTION, shown)


@settings(max_examples=40, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 2)),
        min_size=300,
    ),
    greens=st.tuples(*[st.integers(5, 40)] * 4),
)
def test_the_actuated_controller_never_shows_conflicting_greens(
    arrivals: list[tuple[int, int, int]], greens: tuple[int, int, int, int]
) -> None:
    """Max-pressure's stage jumps, maxima and resting greens keep every intergreen."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from edge.clock import ManualClock  # noqa: PLC0415
    from firmware_sim.signalctl import ControllerSim  # noqa: PLC0415

    clock = ManualClock(datetime(2026, 11, 30, tzinfo=UTC))
    sim = ControllerSim(JUNCTION, clock=clock)
    for stage in range(4):
        sim.zones.wire(f"lane{stage}", {stage: 1.0})
    try:
        sim.pending = plan(
            greens=tuple(float(g) for g in greens),
            cycle=float(sum(greens) + 16),
            actuated=True,
        )
        shown: list[dict[str, str]] = []
        for stage, entered, left in arrivals:
            sim.detect(f"lane{stage}", clock.monotonic(), entered=entered, left=left)
            shown.append(sim.states(clock.monotonic()))
            clock.advance(1)
        for state in shown:
            assert conflicting_greens(JUNCTION, state) == []
        greens_seen = [i for i, s in enumerate(shown) if s["Ws"] in "Gg"]
        assert greens_seen  # the main road got green
    finally:
        sim.stop()
