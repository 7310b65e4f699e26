"""Max-pressure over detector zones: counting, healing, choosing."""

from __future__ import annotations

from firmware_sim.pressure import Pressure, choose, lane_weights
from firmware_sim.traffic import STAGES


def test_a_lane_presses_on_the_stages_that_serve_it() -> None:
    stages = STAGES["A"]
    assert lane_weights({"Ws", "Wr"}, stages) == {0: 1.0}
    assert lane_weights({"Wl"}, stages) == {
        0: 0.5,
        1: 1.0,
    }  # permissive, then protected
    assert lane_weights({"Nl"}, stages) == {2: 0.5, 3: 1.0}
    assert lane_weights({"Xs"}, stages) == {}


def test_zones_count_in_at_the_advance_loop_and_out_at_the_stop_line() -> None:
    p = Pressure()
    p.wire("through", {0: 1.0})
    p.wire("left", {0: 0.5, 1: 1.0})
    p.entered("through", 1.0, 4)
    p.entered("left", 1.0, 2)
    p.left("through", 3.0)
    assert p.of(2) == [3 + 0.5 * 2, 2]
    p.left("left", 4.0, 5)  # more out than in (a lane change): never below zero
    assert p.of(2) == [3, 0]
    p.entered("nowhere", 5.0)  # an unwired input is ignored
    assert p.of(2) == [3, 0]


def test_a_quiet_stop_line_in_green_heals_a_stale_count() -> None:
    p = Pressure(heal_s=6.0)
    p.wire("through", {0: 1.0})
    p.entered("through", 0.0, 3)  # counted in, then they changed lane unseen
    p.heal(0, green_since=2.0, now=5.0)  # green too short to judge
    assert p.of(1) == [3]
    p.entered("through", 9.0)  # one still on its way
    p.heal(0, green_since=2.0, now=12.0)
    assert p.of(1) == [1]
    p.heal(1, green_since=0.0, now=30.0)  # another stage's green: not this lane's
    assert p.of(1) == [1]


def test_the_fullest_stage_takes_over_and_an_empty_junction_rests() -> None:
    assert choose([4, 9, 0, 1], 0, at_max=False) == 1
    assert choose([9, 4, 0, 1], 0, at_max=False) is None  # the running one leads
    assert choose([9, 4, 0, 1], 0, at_max=True) == 1  # … but not past its maximum
    assert choose([3, 0, 0, 0], 0, at_max=True) is None  # nobody else: rest in green
    assert choose([0, 2, 0, 2], 2, at_max=True) == 3  # a tie goes to the next in ring


def test_a_vehicle_standing_at_the_stop_line_calls_its_green_uncounted() -> None:
    p = Pressure()
    p.wire("side", {2: 1.0})
    assert p.of(3) == [0, 0, 0]
    p.standing("side", occupied=True)  # joined past the advance loop
    assert p.of(3) == [0, 0, 1]
    p.entered("side", 1.0, 3)
    assert p.of(3) == [0, 0, 3]  # counted ones are not counted twice
    p.standing("side", occupied=False)
    p.standing("nowhere", occupied=True)
    assert p.of(3) == [0, 0, 3]


def test_a_green_that_still_serves_holds_unless_another_leads_by_the_bias() -> None:
    # still bringing vehicles: held against a small lead …
    assert choose([3, 0, 4, 0], 0, at_max=False, serving=3, bias=2) is None
    # … not against a large one, nor at its maximum
    assert choose([3, 0, 6, 0], 0, at_max=False, serving=3, bias=2) == 2
    assert choose([3, 0, 4, 0], 0, at_max=True, serving=3, bias=2) == 2
    # serving nobody: it ends for anyone waiting, and rests if nobody does
    assert choose([0.5, 0, 1, 0], 0, at_max=False, serving=0, bias=2) == 2
    assert choose([0, 0, 0, 0], 0, at_max=False, serving=0, bias=2) is None


def test_serving_counts_the_lanes_a_green_protects() -> None:
    p = Pressure()
    p.wire("through", {0: 1.0})
    p.wire("left", {0: 0.5, 1: 1.0})
    p.entered("left", 1.0, 2)
    assert p.serving(0) == 0  # a permissive left does not hold the green
    assert p.serving(0, least=0.5) == 2
    p.standing("through", occupied=True)  # uncounted, on the stop line
    assert p.serving(0) == 1


def test_a_vehicle_standing_long_at_its_stop_line_presses_harder() -> None:
    p = Pressure(age_s=20.0)
    p.wire("left", {0: 0.5, 1: 1.0})
    p.entered("left", 0.0, 8)  # the loops count 8; the queue goes on past them
    p.standing("left", occupied=True, t=10.0)
    assert p.of(2) == [4.0, 8.0]  # without a clock: the count alone
    assert p.of(2, now=50.0) == [4.0, 8.0 + 40 / 20]  # 40 s waited: 2 more
    p.left("left", 55.0)  # one got through: the wait starts again
    assert p.of(2, now=60.0) == [3.5, 7.0 + 5 / 20]
