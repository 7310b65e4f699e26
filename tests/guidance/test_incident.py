"""Incident detection: California #7 on a recorded SUMO run, and travel times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central.guidance import incident

DATA = Path(__file__).parent / "data" / "blocked_lane.json"


def test_california7_needs_the_pattern_twice_then_clears() -> None:
    t = incident.Thresholds()
    state, found = incident.california7(0, 5.0, 0.0, thresholds=t)
    assert (state, found) == (incident.TENTATIVE, None)
    state, found = incident.california7(state, 6.0, 0.1, thresholds=t)
    assert state == incident.OCCURRED
    assert found is not None
    assert found.kind == "raised"
    assert found.evidence["occrdf"] > 0.9
    state, found = incident.california7(state, 6.0, 0.2, thresholds=t)
    assert (state, found) == (incident.CONTINUING, None)
    state, found = incident.california7(state, 5.0, 4.0, thresholds=t)
    assert state == incident.FREE
    assert found is not None
    assert found.kind == "cleared"
    # once is not enough, and a busy downstream lane is traffic, not an incident
    assert incident.california7(1, 5.0, 4.0, thresholds=t) == (incident.FREE, None)
    assert incident.california7(0, 30.0, 5.0, thresholds=t) == (incident.FREE, None)
    with pytest.raises(ValueError, match="t2"):
        incident.Thresholds(t2=1.5)


def test_a_lane_whose_traffic_moved_beside_it_alarms_at_once() -> None:
    t = incident.Thresholds()
    state, found = incident.california7(0, 5.0, 0.0, thresholds=t, occ_beside=9.0)
    assert state == incident.OCCURRED
    assert found is not None
    assert found.evidence["occ_beside"] == 9.0
    quiet = incident.california7(0, 5.0, 0.0, thresholds=t, occ_beside=2.0)
    assert quiet == (incident.TENTATIVE, None)  # nothing went beside: #7's way
    off = incident.Thresholds(beside_now=0)
    assert incident.california7(0, 5.0, 0.0, thresholds=off, occ_beside=9.0)[0] == 1


def test_blocked_lane_in_a_recorded_sumo_run_is_found_and_nothing_else() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    loops = data["loops"]
    edges = sorted({key.split("|")[1] for key in loops})
    states = {edge: incident.LaneStates() for edge in edges}
    alarms: list[tuple[str, int, int]] = []
    for minute in range(5, 60):  # from the network's fifth minute
        for edge in edges:
            up = {int(k): v for k, v in loops[f"x|{edge}"].get(str(minute), {}).items()}
            down = {
                int(k): v for k, v in loops[f"a|{edge}"].get(str(minute), {}).items()
            }
            states[edge], found = states[edge].step(
                up, down, lanes=tuple(data["lanes"]), thresholds=incident.Thresholds()
            )
            alarms += [
                (edge, lane, 60 * (minute + 1))
                for lane, f in found
                if f.kind == "raised"
            ]
    assert alarms, "the blocked lane was not found"
    edge, lane, at = alarms[0]
    assert (edge, lane) == (data["blocked_edge"], data["blocked_lane"])
    assert 0 < at - data["started_s"] <= 180
    assert all(a[0] == data["blocked_edge"] for a in alarms)


def test_travel_time_watch_raises_after_persisting_and_clears() -> None:
    rules = incident.WatchRules()
    watch = incident.TravelTimeWatch()
    for seconds in [120, 118, 125, 122, 119, 121]:
        watch, found = watch.step(seconds, rules=rules)
        assert found is None
    watch, found = watch.step(300, rules=rules)
    assert found is None  # one slow minute is traffic
    watch, found = watch.step(320, rules=rules)
    assert found is not None
    assert found.kind == "raised"
    assert found.evidence["baseline_s"] == pytest.approx(120.5)
    watch, found = watch.step(125, rules=rules)
    assert found is not None
    assert found.kind == "cleared"
