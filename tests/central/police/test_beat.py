"""The beat watch: no false alarm from noise at the edge, real exits, escalation."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from central.police.beat import BeatRules, Watch, from_dict, on_fix, on_time, to_dict
from central.police.geo import make_area, project

if TYPE_CHECKING:
    from collections.abc import Sequence

LAT, LON = 29.145, 113.118
M_LAT = 1 / 110_850  # degrees of latitude per metre near 29°N

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
RULES = BeatRules()
D_LAT, D_LON = 500 * M_LAT, 500 / 97_300
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [
            [LON - D_LON, LAT - D_LAT],
            [LON + D_LON, LAT - D_LAT],
            [LON + D_LON, LAT + D_LAT],
            [LON - D_LON, LAT + D_LAT],
            [LON - D_LON, LAT - D_LAT],
        ]
    ],
}
AREA = make_area(SQUARE, buffer_m=RULES.buffer_m)


def walk(
    fixes: Sequence[tuple[float, float, float]], watch: Watch | None = None
) -> tuple[Watch, list[tuple[float, str]]]:
    """Feed (seconds, lat, lon) fixes; return the watch and what was found when."""
    watch = watch or Watch()
    found: list[tuple[float, str]] = []
    for t, lat, lon in fixes:
        x, y = project(lat, lon)
        watch, more = on_fix(
            watch,
            at=T0 + timedelta(seconds=t),
            inside=AREA.inside(lat, lon),
            x=x,
            y=y,
            poor=False,
            rules=RULES,
        )
        found += [(t, f) for f in more]
    return watch, found


def test_noisy_fixes_at_the_edge_raise_nothing() -> None:
    rng = random.Random(7)
    edge = LAT + 495 * M_LAT  # 5 m inside the north edge, GNSS noise of 5 m
    fixes = [
        (t * 5.0, edge + rng.gauss(0, 5) * M_LAT, LON + rng.gauss(0, 5) / 97_300)
        for t in range(200)
    ]
    _, found = walk(fixes)
    assert [f for _, f in found if f.startswith("beat")] == []


def test_a_real_exit_alarms_after_two_fixes_and_the_return_clears_it() -> None:
    out = LAT + 700 * M_LAT
    fixes = [
        (0, LAT, LON),
        (5, out, LON),
        (10, out, LON),
        (15, out, LON),
        (20, LAT, LON),
    ]
    _, found = walk(fixes)
    assert found == [(10, "beat_exit"), (20, "beat_return")]


def test_poor_fixes_are_ignored() -> None:
    x, y = project(LAT + 900 * M_LAT, LON)
    watch = Watch()
    for t in range(0, 600, 5):
        watch, found = on_fix(
            watch,
            at=T0 + timedelta(seconds=t),
            inside=False,
            x=x,
            y=y,
            poor=True,
            rules=RULES,
        )
        assert found == []
    assert watch == Watch()


def test_one_fix_outside_alarms_after_exit_s_and_leader_at_the_limit() -> None:
    out = LAT + 700 * M_LAT
    watch, found = walk([(0, out, LON)])
    assert found == []
    watch, found2 = on_time(watch, at=T0 + timedelta(seconds=59), rules=RULES)
    assert found2 == []
    watch, found3 = on_time(watch, at=T0 + timedelta(seconds=60), rules=RULES)
    assert found3 == ["beat_exit"]
    watch, early = on_time(watch, at=T0 + timedelta(seconds=899), rules=RULES)
    assert early == []
    watch, at_limit = on_time(watch, at=T0 + timedelta(seconds=900), rules=RULES)
    assert at_limit == ["beat_leader"]
    _, again = on_time(watch, at=T0 + timedelta(seconds=2000), rules=RULES)
    assert again == []  # told once


def test_stationary_on_duty_after_twenty_minutes_then_moving() -> None:
    rng = random.Random(3)
    fixes = [
        (t * 30.0, LAT + rng.gauss(0, 4) * M_LAT, LON + rng.gauss(0, 4) / 97_300)
        for t in range(45)
    ]
    watch, found = walk(fixes)
    assert found == [(1200.0, "stationary")]
    _, moved = walk([(1400.0, LAT + 200 * M_LAT, LON)], watch)
    assert moved == [(1400.0, "moving")]


def test_off_duty_resets_and_old_fixes_are_ignored() -> None:
    out = LAT + 700 * M_LAT
    watch, _ = walk([(0, out, LON), (5, out, LON)])
    assert watch.alarmed
    x, y = project(out, LON)
    off, found = on_fix(
        watch,
        at=T0 + timedelta(seconds=10),
        inside=None,
        x=x,
        y=y,
        poor=False,
        rules=RULES,
    )
    assert found == []
    assert not off.alarmed
    stale, found = on_fix(off, at=T0, inside=False, x=x, y=y, poor=False, rules=RULES)
    assert stale == off
    assert found == []


def test_watch_survives_the_database() -> None:
    watch, _ = walk([(0, LAT + 700 * M_LAT, LON)])
    assert from_dict(to_dict(watch)) == watch
