"""The pure GeoReport v2 rules: dates, coordinates, ids, photos, XML."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.complaints import georeport
from central.complaints.georeport import GeoReportError

NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


def test_the_spec_examples_are_one_instant() -> None:
    # GeoReport v2, "Date/time format": both name 1994-11-05 13:15:30 UTC.
    a = georeport.parse_datetime("1994-11-05T08:15:30-05:00", field="start_date")
    b = georeport.parse_datetime("1994-11-05T13:15:30Z", field="start_date")
    assert a == b == datetime(1994, 11, 5, 13, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-12-05T08:00:00+08:00", datetime(2026, 12, 5, 0, 0, tzinfo=UTC)),
        ("2026-12-05T08:00:00 08:00", datetime(2026, 12, 5, 0, 0, tzinfo=UTC)),
        ("2026-12-05T08:00:00", datetime(2026, 12, 5, 0, 0, tzinfo=UTC)),
        ("2026-12-05", datetime(2026, 12, 4, 16, 0, tzinfo=UTC)),
        ("2026-12-05T00:00:00.5Z", datetime(2026, 12, 5, 0, 0, 0, 500000, UTC)),
    ],
)
def test_offsets_are_honoured_and_county_time_is_the_default(
    text: str, utc: datetime
) -> None:
    assert georeport.parse_datetime(text, field="end_date") == utc


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "", "1" * 500])
def test_a_bad_date_names_the_field(text: str) -> None:
    with pytest.raises(GeoReportError, match=r"^end_date: expected an ISO 8601") as e:
        georeport.parse_datetime(text, field="end_date")
    assert e.value.code == 400


def test_output_is_county_time_with_its_offset() -> None:
    assert georeport.county_iso(NOW) == "2026-12-05T10:00:00+08:00"
    assert georeport.county_iso(NOW.replace(tzinfo=None)) == "2026-12-05T10:00:00+08:00"
    assert georeport.county_iso(None) is None


def test_the_date_window() -> None:
    start, end = georeport.date_window(None, None, now=NOW)
    assert (start, end) == (NOW - timedelta(days=90), NOW)
    later = NOW + timedelta(days=1)
    assert georeport.date_window(later, None, now=NOW) == (
        later,
        later + timedelta(days=90),
    )
    with pytest.raises(GeoReportError, match="at most 90 days"):
        georeport.date_window(NOW - timedelta(days=91), NOW, now=NOW)
    with pytest.raises(GeoReportError, match="before end_date"):
        georeport.date_window(NOW, NOW - timedelta(seconds=1), now=NOW)


@given(st.text(max_size=30))
def test_a_coordinate_is_finite_and_in_range_or_refused(text: str) -> None:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not text.strip():
        assert georeport.parse_coordinate(text, field="lat") is None
    elif math.isfinite(number) and abs(number) <= 90:
        assert georeport.parse_coordinate(text, field="lat") == number
    else:
        with pytest.raises(GeoReportError, match=r"^lat: expected"):
            georeport.parse_coordinate(text, field="lat")


@pytest.mark.parametrize("text", ["nan", "-inf", "1e999", "90.0001", "Infinity"])
def test_nan_and_friends_are_refused(text: str) -> None:
    with pytest.raises(GeoReportError, match=r"^lat: expected a finite number"):
        georeport.parse_coordinate(text, field="lat")


def test_ids() -> None:
    assert georeport.parse_id("1") == 1
    assert georeport.parse_id(str(2**31 - 1)) == 2**31 - 1
    for odd in ("0", str(2**31), "9" * 40, "-1", "1.0", "١", " 1"):
        assert georeport.parse_id(odd) is None
    assert georeport.parse_ids("3, 1,,2") == [3, 1, 2]
    with pytest.raises(GeoReportError, match="at most 1000 ids"):
        georeport.parse_ids(",".join(["1"] * 1001))
    with pytest.raises(GeoReportError, match="whole numbers"):
        georeport.parse_ids("1,99999999999")


def test_statuses() -> None:
    assert georeport.parse_statuses("open,CLOSED") == {"open", "closed"}
    assert georeport.parse_statuses("") == frozenset()
    with pytest.raises(GeoReportError, match=r"^status: expected open or closed"):
        georeport.parse_statuses("pending")


@pytest.mark.parametrize(
    ("head", "ext"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
        (b"GIF89a\x01\x00", "gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp"),
    ],
)
def test_photos_by_their_first_bytes(head: bytes, ext: str) -> None:
    assert georeport.sniff_image(head + b"\0" * 32) == ext


def test_other_uploads_are_refused() -> None:
    for data in (b"", b"<svg onload=alert(1)>", b"%PDF-1.7"):
        with pytest.raises(GeoReportError, match=r"^media: expected"):
            georeport.sniff_image(data)
    with pytest.raises(GeoReportError, match="at most 5242880 bytes"):
        georeport.sniff_image(b"\x89PNG\r\n\x1a\n" + b"\0" * georeport.MAX_MEDIA)


@given(st.text())
def test_any_text_makes_well_formed_xml(text: str) -> None:
    body = georeport.to_xml("service_requests", [{"description": text, "lat": None}])
    root = ET.fromstring(body)
    got = root.findtext("request/description") or ""
    assert got == georeport.clean_text(text).replace("\r\n", "\n").replace("\r", "\n")


def test_text_fields_are_bounded_and_cleaned() -> None:
    form = {"description": "a\x00b\x1bc\n", "address_id": "x" * 65}
    assert georeport.parse_text(form, "description") == "abc"
    assert georeport.parse_text(form, "phone") == ""
    with pytest.raises(
        GeoReportError, match=r"^address_id: expected at most 64 characters, got 65$"
    ):
        georeport.parse_text(form, "address_id")


def test_the_format_comes_from_the_extension() -> None:
    assert georeport.parse_format("xml") == "xml"
    with pytest.raises(GeoReportError, match=r"^format: expected json or xml"):
        georeport.parse_format("csv")
