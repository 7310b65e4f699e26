"""Rollouts: growing waves, and a bad release that stops itself."""

from __future__ import annotations

import functools
import operator
from datetime import UTC, datetime, timedelta

import pytest

from central.ota.rollout import Plan, Rollout, decide, report, waves

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
FLEET = [f"n{i:03d}" for i in range(200)]


def test_waves_grow_from_a_canary_and_skip_pinned_devices() -> None:
    sizes = [len(w) for w in waves(FLEET, Plan(canary=2, growth=3))]
    assert sizes == [2, 6, 18, 54, 120]
    pinned = waves(FLEET[:10], Plan(canary=2), pinned=frozenset({"n000", "n005"}))
    assert "n000" not in functools.reduce(operator.iadd, pinned, [])
    with pytest.raises(ValueError, match="canary"):
        Plan(canary=0)


def run(rollout: Rollout, healthy: bool) -> tuple[str, int]:
    now, touched = T0, 0
    while True:
        d = decide(rollout, now)
        if d.action in ("done", "pause", "cancel"):
            return d.action, touched
        for device in d.assign:
            touched += 1
            report(rollout, device, ok=healthy)
        now += timedelta(minutes=5)


def test_a_good_release_reaches_everyone() -> None:
    rollout = Rollout(Plan(), waves(FLEET, Plan()))
    assert run(rollout, healthy=True) == ("done", 200)


def test_a_bad_release_stops_at_the_canary() -> None:
    rollout = Rollout(Plan(), waves(FLEET, Plan()))
    action, touched = run(rollout, healthy=False)
    assert action == "cancel"
    assert touched == 2  # 1 % of the fleet


def test_pause_below_cancel_and_a_lone_failure_does_not_stop_it() -> None:
    plan = Plan(canary=4, min_sample=4, pause_at=0.2, cancel_at=0.6)
    rollout = Rollout(plan, waves(FLEET[:40], plan))
    first = decide(rollout, T0)
    assert first.action == "assign"
    for device in first.assign[:3]:
        report(rollout, device, ok=True)
    report(rollout, first.assign[3], ok=False, reason="health check failed")
    assert decide(rollout, T0).action == "pause"  # 1 of 4 = 25 %
    calm = Plan(canary=4, min_sample=4, pause_at=0.3, cancel_at=0.6)
    rollout = Rollout(calm, waves(FLEET[:40], calm))
    wave = decide(rollout, T0).assign
    for device in wave[:3]:
        report(rollout, device, ok=True)
    report(rollout, wave[3], ok=False)
    nxt = decide(rollout, T0)
    assert nxt.action == "assign"
    assert nxt.wave == 2


def test_silent_nodes_time_out_are_retried_then_fail() -> None:
    plan = Plan(canary=1, min_sample=1, node_timeout_s=60, retries=1)
    rollout = Rollout(plan, waves(FLEET[:3], plan))
    assert decide(rollout, T0).assign == ("n000",)
    again = decide(rollout, T0 + timedelta(seconds=61))
    assert again.timed_out == ("n000",)
    assert again.assign == ("n000",)  # the retry
    last = decide(rollout, T0 + timedelta(seconds=200))
    assert last.timed_out == ("n000",)
    assert last.action == "cancel"
    assert rollout.nodes["n000"].reason == "timed out"
