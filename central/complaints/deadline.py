"""Time limits in working days, and where a complaint stands against them.

Pure. Working days follow China's public holidays and make-up working days
(调休) from ``chinese_calendar``; an override table (dates that are or are
not working days) covers what it does not know — years after its data, a
local holiday — and wins over it. A year neither knows falls back to
Monday–Friday. 督办: a warning at 80 % of the limit, 催办 at the limit, and
escalation to the department head a further ``escalate_after`` working days
on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

import chinese_calendar

from central.errors import InvalidError

Level = Literal["ok", "warning", "urge", "escalate"]


@dataclass(frozen=True, slots=True)
class Calendar:
    """Working days: chinese_calendar, overridden by ``overrides``."""

    overrides: dict[date, bool] = field(default_factory=dict)

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        if day in self.overrides:
            return self.overrides[day]
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # a year the library has no data for
            return day.weekday() < 5  # noqa: PLR2004

    def add_workdays(self, start: datetime, days: int) -> datetime:
        """The end of the ``days``-th working day after ``start``'s day."""
        if days < 0:
            raise InvalidError(f"expected a number of days >= 0, got {days}")
        day = start.date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return datetime.combine(day, time(23, 59, 59), tzinfo=start.tzinfo)

    def workdays_between(self, start: datetime, end: datetime) -> int:
        """Working days after ``start``'s day up to and including ``end``'s."""
        n, day = 0, start.date()
        while day < end.date():
            day += timedelta(days=1)
            n += self.is_workday(day)
        return n


def level(
    *,
    received: datetime,
    due: datetime,
    now: datetime,
    calendar: Calendar,
    escalate_after: int = 2,
) -> Level:
    """Where a complaint stands: fine, warning (80 %), urge (due), escalate."""
    if now > calendar.add_workdays(due, escalate_after):
        return "escalate"
    if now > due:
        return "urge"
    total = calendar.workdays_between(received, due)
    if total > 0 and calendar.workdays_between(received, now) >= 0.8 * total:
        return "warning"  # 80 % of the working days used
    return "ok"
