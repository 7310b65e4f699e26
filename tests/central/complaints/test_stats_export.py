"""The statistics export as a supervisor opens it: Chinese headers, names, %.

CSV (with a BOM, read back by the csv module) and XLSX (read back by
openpyxl): every header in Chinese, the group by its Chinese name, the rates
as percentages — text in CSV, numbers formatted ``0.0%`` in XLSX.
"""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from central.complaints.stats import COLUMNS, percent, to_csv, to_xlsx

ROWS = [
    {
        "group": "cgj",
        "received": 6,
        "responded": 5,
        "closed": 6,
        "rated": 4,
        "satisfied": 3,
        "响应率": 0.8333,
        "解决率": 1.0,
        "满意率": 0.75,
    },
    {
        "group": "（未分派）",
        "received": 1,
        "responded": 0,
        "closed": 0,
        "rated": 0,
        "satisfied": 0,
        "响应率": 0.0,
        "解决率": 0.0,
        "满意率": None,
    },
]
NAMES = {"cgj": "县城管局"}
HEADERS = [
    "承办部门",
    "受理件数",
    "按时响应件数",
    "办结件数",
    "评价件数",
    "满意件数",
    "响应率",
    "解决率",
    "满意率",
]


def test_csv_reads_in_chinese_with_percentages() -> None:
    data = to_csv(ROWS, by="department", names=NAMES)
    assert data.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == HEADERS
    assert table[1] == ["县城管局", "6", "5", "6", "4", "3", "83.3%", "100.0%", "75.0%"]
    assert table[2][0] == "（未分派）"
    assert table[2][-1] == "—"
    assert not any(cell.isascii() and cell.isalpha() for cell in table[0])


def test_xlsx_headers_names_and_percent_format() -> None:
    book = load_workbook(io.BytesIO(to_xlsx(ROWS, by="category", names=NAMES)))
    sheet = book["统计"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("投诉类别", *HEADERS[1:])
    assert rows[1][0] == "县城管局"
    rate = sheet.cell(row=2, column=COLUMNS.index("解决率") + 1)
    assert rate.value == 1.0
    assert rate.number_format == "0.0%"


def test_percent() -> None:
    assert percent(0.0) == "0.0%"
    assert percent(None) == "—"
