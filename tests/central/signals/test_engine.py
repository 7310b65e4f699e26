"""The signal engine: Webster, better than Webster, green waves, re-timing."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from central.signals.engine import (
    Limits,
    Timing,
    after_sneakers,
    bandwidth,
    delay,
    green_wave,
    optimise,
    permissive_stages,
    retime,
    time_of_day,
    webster,
)

# Junction A of the SUMO judge: EW through+right (2 lanes), EW left, NS, NS left.
A = [
    [(765.0, 3350.0), (765.0, 3350.0)],
    [(135.0, 1800.0), (135.0, 1800.0)],
    [(240.0, 3350.0), (240.0, 3350.0)],
    [(60.0, 1800.0), (60.0, 1800.0)],
]


def test_webster_cycle_and_proportional_greens() -> None:
    t = webster(A)
    # Y = 0.228 + 0.075 + 0.072 + 0.033; L = 4 × 4 s; C0 = (1.5·16 + 5)/(1 − Y)
    assert t.cycle == 49
    assert sum(t.greens) + 4 * 4 == t.cycle
    assert t.greens[0] > t.greens[2] > t.greens[3]
    assert min(t.greens) >= 5


def test_optimise_beats_webster_on_webster_s_own_delay() -> None:
    w, o = webster(A), optimise(A)
    assert delay(o, A) < delay(w, A)
    assert sum(o.greens) + 16 == o.cycle
    assert min(o.greens) >= 5


def test_permissive_left_turns_leave_their_stage_only_what_the_gaps_do_not_clear() -> (
    None
):
    """A's left stages also turn in the gaps of their through stage: the
    optimum gives them less, and the through stages more, than without."""
    stages = [
        {"Es": "G", "Ws": "G", "El": "g", "Wl": "g"},
        {"El": "G", "Wl": "G"},
        {"Ns": "G", "Ss": "G", "Nl": "g", "Sl": "g"},
        {"Nl": "G", "Sl": "G"},
    ]
    permissive = permissive_stages(stages)
    assert permissive == {1, 3}
    plain, gaps = optimise(A), optimise(A, permissive=permissive)
    assert gaps.greens[1] < plain.greens[1]
    assert gaps.greens[3] == Limits().min_green
    assert gaps.greens[0] > plain.greens[0]
    assert delay(gaps, A, permissive=permissive) < delay(
        plain, A, permissive=permissive
    )
    cleared = after_sneakers(A, permissive, 60.0)
    assert cleared[3] == [(0.0, 1800.0), (0.0, 1800.0)]  # 2 a cycle = 120 veh/h
    assert cleared[0] == A[0]


@settings(max_examples=60, deadline=None)
@given(
    flows=st.lists(st.floats(10, 700), min_size=2, max_size=5),
)
def test_every_plan_respects_the_cabinet_s_limits(flows: list[float]) -> None:
    stages = [[(q, 1800.0)] for q in flows]
    limits = Limits()
    for t in (webster(stages, limits), optimise(stages, limits)):
        assert limits.min_cycle <= t.cycle <= limits.max_cycle
        assert min(t.greens) >= limits.min_green
        assert sum(t.greens) + len(stages) * 4 == t.cycle
        assert all(g == int(g) for g in t.greens)


def test_green_wave_offsets_open_both_directions() -> None:
    positions = [0.0, 320.0, 680.0, 1030.0, 1400.0]
    greens = [28.0] * 5
    offsets = green_wave(positions, greens, 60.0, speed_mps=13.89, peak_share=0.6)
    out = [x / 13.89 for x in positions]
    back = [(1400.0 - x) / 13.89 for x in positions]
    b_out = bandwidth(offsets, greens, out, 60.0)
    b_in = bandwidth(offsets, greens, back, 60.0)
    flat_out = bandwidth([0.0] * 5, greens, out, 60.0)
    assert b_out > flat_out
    assert b_out >= 8  # both ways at once: a 60 s cycle leaves little
    assert b_in >= 0.6 * b_out * (0.4 / 0.6)


def test_time_of_day_merges_similar_hours() -> None:
    night = [[(q * 0.2, s) for q, s in stage] for stage in A]
    hours = [night] * 7 + [A] * 3 + [night] * 14
    rows = time_of_day(hours, min_change_s=4)
    assert [h for h, _ in rows] == [0, 7, 10]
    assert rows[1][1].cycle > rows[0][1].cycle


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(0.2, 1.4))
def test_retiming_moves_at_most_the_bound_per_cycle(scale: float) -> None:
    current = Timing(60.0, (26.0, 8.0, 12.0, 6.0))
    measured = [[(q * scale, s) for q, s in stage] for stage in A]
    step = retime(current, measured, max_step_s=4)
    assert abs(step.cycle - current.cycle) <= 4
    assert sum(step.greens) + 16 == step.cycle
    coordinated = retime(current, measured, fixed_cycle=True)
    assert coordinated.cycle == 60
    assert coordinated.offset == current.offset


def test_five_hundred_junctions_are_planned_quickly_enough_to_show() -> None:
    """Not a timing test (bench.signals measures): just that it scales linearly."""
    started = time.perf_counter()
    for i in range(50):
        optimise([[(q * (1 + i % 7 / 10), s) for q, s in stage] for stage in A])
    assert time.perf_counter() - started < 30
