"""Working-day arithmetic across the National Day holiday and make-up days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from central.complaints.deadline import Calendar, level

CAL = Calendar()


def at(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def test_national_day_is_skipped_and_the_make_up_saturday_counts() -> None:
    # 2026: 1-7 October off; Saturday 10 October is a make-up working day.
    assert not CAL.is_workday(date(2026, 10, 1))
    assert CAL.is_workday(date(2026, 10, 10))
    received = at(date(2026, 9, 29))  # Tuesday
    due = CAL.add_workdays(received, 5)
    # Working days after the 29th: 30 Sep, 8 Oct, 9 Oct, 10 Oct (Sat), 12 Oct.
    assert due.date() == date(2026, 10, 12)
    assert CAL.workdays_between(received, due) == 5


def test_overrides_win_and_unknown_years_fall_back_to_weekdays() -> None:
    local = Calendar(overrides={date(2026, 10, 9): False})  # a local day off
    assert local.add_workdays(at(date(2026, 9, 29)), 5).date() == date(2026, 10, 13)
    assert CAL.is_workday(date(2031, 3, 3))  # a Monday in a year without data
    assert not CAL.is_workday(date(2031, 3, 2))
    with pytest.raises(ValueError, match=">= 0"):
        CAL.add_workdays(at(date(2026, 1, 5)), -1)


def test_supervision_levels() -> None:
    received = at(date(2026, 11, 2))  # Monday
    due = CAL.add_workdays(received, 5)  # Monday 9 Nov, end of day
    assert (
        level(
            received=received, due=due, now=received + timedelta(days=1), calendar=CAL
        )
        == "ok"
    )
    assert (
        level(received=received, due=due, now=at(date(2026, 11, 8)), calendar=CAL)
        == "warning"
    )
    assert (
        level(received=received, due=due, now=at(date(2026, 11, 10)), calendar=CAL)
        == "urge"
    )
    assert (
        level(received=received, due=due, now=at(date(2026, 11, 12)), calendar=CAL)
        == "escalate"
    )
