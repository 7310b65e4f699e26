"""Statistics of the loop: 响应率, 解决率, 满意率 by department, category, period.

Pure: complaint values in, rows out; CSV and XLSX writers for the export.
响应率 — accepted (or answered) within one working day of receipt, of all
received; 解决率 — closed, of all received; 满意率 — rated 4 or 5, of all
rated.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook

from central.errors import InvalidError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

if TYPE_CHECKING:
    from datetime import datetime

    from central.complaints.deadline import Calendar

COLUMNS = (
    "group",
    "received",
    "responded",
    "closed",
    "rated",
    "satisfied",
    "响应率",
    "解决率",
    "满意率",
)


@dataclass(frozen=True, slots=True)
class Fact:
    """What statistics need of one complaint."""

    department: str
    category: str
    received_at: datetime
    accepted_at: datetime | None
    closed: bool
    rating: int | None


def table(facts: list[Fact], *, by: str, calendar: Calendar) -> list[dict[str, Any]]:
    """One row per department / category / month (``by``), rates as 0..1.

    Raises:
        InvalidError: ``by`` is not department, category or month.
    """
    keys: dict[str, Callable[[Fact], str]] = {
        "department": lambda f: f.department or "（未分派）",
        "category": lambda f: f.category,
        "month": lambda f: f.received_at.strftime("%Y-%m"),
    }
    if by not in keys:
        raise InvalidError(f"expected by of {sorted(keys)}, got {by!r}")
    groups: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        groups[keys[by](f)].append(f)
    rows = []
    for name in sorted(groups):
        items = groups[name]
        responded = sum(
            1
            for f in items
            if f.accepted_at is not None
            and calendar.workdays_between(f.received_at, f.accepted_at) <= 1
        )
        closed = sum(f.closed for f in items)
        rated = [f.rating for f in items if f.rating is not None]
        satisfied = sum(r >= 4 for r in rated)  # noqa: PLR2004
        rows.append(
            {
                "group": name,
                "received": len(items),
                "responded": responded,
                "closed": closed,
                "rated": len(rated),
                "satisfied": satisfied,
                "响应率": round(responded / len(items), 4),
                "解决率": round(closed / len(items), 4),
                "满意率": round(satisfied / len(rated), 4) if rated else None,
            }
        )
    return rows


# The export's columns: the rows' keys and the headers a person reads.
HEADERS = {
    "group": "分组",
    "received": "受理件数",
    "responded": "按时响应件数",
    "closed": "办结件数",
    "rated": "评价件数",
    "satisfied": "满意件数",
    "响应率": "响应率",
    "解决率": "解决率",
    "满意率": "满意率",
}
GROUP_HEADERS = {"department": "承办部门", "category": "投诉类别", "month": "月份"}
RATES = frozenset({"响应率", "解决率", "满意率"})


def _headers(by: str) -> list[str]:
    return [
        GROUP_HEADERS.get(by, HEADERS["group"]) if c == "group" else HEADERS[c]
        for c in COLUMNS
    ]


def _group(row: dict[str, Any], names: Mapping[str, str]) -> str:
    return names.get(row["group"], row["group"])


def percent(rate: float | None) -> str:
    """A rate as a person reads it: ``0.8333`` → ``83.3%``, none → ``—``.

    >>> percent(1.0), percent(0.8333), percent(None)
    ('100.0%', '83.3%', '—')
    """
    return "—" if rate is None else f"{rate * 100:.1f}%"


def to_csv(
    rows: list[dict[str, Any]],
    *,
    by: str = "department",
    names: Mapping[str, str] | None = None,
) -> bytes:
    """The rows as UTF-8 CSV with a BOM (Excel opens it in Chinese).

    Chinese headers, the group by its Chinese name (``names``: code → name)
    and the rates as percentages.
    """
    names = names or {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_headers(by))
    for row in rows:
        writer.writerow(
            [
                _group(row, names)
                if c == "group"
                else percent(row[c])
                if c in RATES
                else row[c]
                for c in COLUMNS
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(
    rows: list[dict[str, Any]],
    *,
    by: str = "department",
    names: Mapping[str, str] | None = None,
) -> bytes:
    """The rows as an XLSX workbook: Chinese headers, rates formatted as %."""
    names = names or {}
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # noqa: S101 - a new workbook has one sheet
    sheet.title = "统计"
    sheet.append(_headers(by))
    for row in rows:
        sheet.append([_group(row, names) if c == "group" else row[c] for c in COLUMNS])
        for i, c in enumerate(COLUMNS, start=1):
            if c in RATES:
                sheet.cell(row=sheet.max_row, column=i).number_format = "0.0%"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
