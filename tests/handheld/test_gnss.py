"""Which fixes the handheld trusts, and how often it reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handheld.epoch import Fix
from handheld.gnss import FixLimits, distance_m, refuse_fix, report_interval

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def fix(
    at: datetime, lat: float = 29.145, lon: float = 113.118, hdop: float = 1.0
) -> Fix:
    return Fix(
        time=at,
        lat=lat,
        lon=lon,
        quality=1,
        sats=12,
        hdop=hdop,
        speed_mps=0.0,
        course=None,
        talker="GN",
    )


def test_distance_is_geodesic() -> None:
    # One minute of latitude is about 1,847 m at 29°N.
    assert distance_m(29.0, 113.0, 29.0 + 1 / 60, 113.0) == pytest.approx(1847, abs=3)


def test_good_poor_stale_and_jumping_fixes() -> None:
    limits = FixLimits(max_hdop=5, stale_s=10, max_speed_mps=70)
    first = fix(T0)
    assert refuse_fix(first, None, now=T0, limits=limits) is None
    assert refuse_fix(fix(T0, hdop=9.0), None, now=T0, limits=limits) == "hdop"
    assert (
        refuse_fix(first, None, now=T0 + timedelta(seconds=30), limits=limits)
        == "stale"
    )
    later = T0 + timedelta(seconds=1)
    jumped = fix(later, lat=29.155)  # 1.1 km in one second
    assert refuse_fix(jumped, first, now=later, limits=limits) == "jump"
    walked = fix(later, lat=29.145 + 0.00002)  # about 2 m
    assert refuse_fix(walked, first, now=later, limits=limits) is None
    assert (
        refuse_fix(first, walked, now=later, limits=limits) == "stale"
    )  # out of order


def test_limits_validate_themselves() -> None:
    with pytest.raises(ValueError, match="positive"):
        FixLimits(max_hdop=0)


def test_reporting_rate_adapts() -> None:
    kw = {"standing_s": 30.0, "moving_s": 5.0, "sos_s": 1.0, "moving_mps": 1.0}
    assert report_interval(0.2, sos=False, **kw) == 30.0
    assert report_interval(1.4, sos=False, **kw) == 5.0
    assert report_interval(0.0, sos=True, **kw) == 1.0


def test_simulated_and_manual_fixes_are_not_trusted() -> None:
    limits = FixLimits()
    for quality in (7, 8):  # GGA: manual input, simulator mode
        sim = Fix(
            time=T0, lat=29.145, lon=113.118, quality=quality, sats=10, hdop=1.0,
            speed_mps=0.0, course=None, talker="GP",
        )  # fmt: skip
        assert refuse_fix(sim, None, now=T0, limits=limits) == "simulated"
