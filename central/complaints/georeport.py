"""GeoReport v2 (Open311) rules: what a client may send and what the public sees.

Pure: checks the fields clients send (dates with offsets, coordinates, ids,
text, photos by their first bytes), decides how much of a complaint Open311
shows, and writes the spec's XML and discovery document. The routes, the
database and the stored photos are :mod:`central.api.open311`'s.

What is public: only complaints filed through Open311 (``Complaint.public``);
kiosk, desk and hotline complaints do not exist for Open311 (404, never
listed). An Open311 complaint filed with a name, phone or e-mail is shown
anonymised: status, type, agency and dates, never its text, place or photo.
Names, phones and e-mails are never shown.

Errors are :class:`GeoReportError` (a ``CentralError`` and ``ValueError``)
carrying the HTTP status the spec's error list reports.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from central.complaints import workflow
from central.errors import CentralError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from central.complaints.models import Complaint

# 岳阳县 keeps China Standard Time all year: UTC+8, no daylight saving.
COUNTY_TZ = timezone(timedelta(hours=8))
SPEC = "http://wiki.open311.org/GeoReport_v2"
# When the service list, definitions or this API's shape last changed.
CHANGESET = "2026-12-05T00:00:00+08:00"
FORMATS = {"json": "application/json", "xml": "text/xml"}
MAX_ID = 2**31 - 1  # complaint ids are PostgreSQL integers
MAX_IDS = 1000  # ids in one service_request_id list
MAX_CODES = 100  # service codes in one filter
MAX_SPAN = timedelta(days=90)  # the spec's longest start_date..end_date
MAX_ROWS = 1000  # requests in one list answer
MAX_MEDIA = 5 * 1024 * 1024  # bytes of one uploaded photo
# Fields a client may send as text, and their longest accepted value.
LIMITS = {
    "description": 4000,  # the spec's limit
    "address_string": 200,
    "address_id": 64,
    "first_name": 32,
    "last_name": 32,
    "phone": 32,
    "email": 128,
    "device_id": 64,
    "media_url": 1000,
}
# Characters XML 1.0 cannot carry, and other controls no citizen types.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# A "+" sent unencoded in a query string arrives as a space.
_LOST_PLUS = re.compile(r"(\d{4}-?\d{2}-?\d{2}T[0-9:.]+) (\d{2}(?::?\d{2})?)")
_ID = re.compile(r"[0-9]{1,10}")
# First bytes of the photo types accepted, and the extension each is kept under.
_IMAGES = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
MEDIA_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
}
# What the array elements of the XML answers are called.
_ITEM = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
}


class GeoReportError(CentralError, ValueError):
    """A request the spec's error list refuses, with its HTTP status."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def clean_text(value: str) -> str:
    """``value`` without control characters (tab and line breaks stay)."""
    return _CONTROL.sub("", value)


def parse_format(fmt: str) -> str:
    """The answer format named by the path's extension.

    Raises:
        GeoReportError: 400, neither ``json`` nor ``xml``.
    """
    if fmt not in FORMATS:
        raise GeoReportError(400, f"format: expected json or xml, got {fmt[:20]!r}")
    return fmt


def parse_text(form: Mapping[str, str], field: str) -> str:
    """One text field, control characters removed, within its limit.

    Raises:
        GeoReportError: 400, longer than :data:`LIMITS` allows.
    """
    value = clean_text(form.get(field, "")).strip()
    limit = LIMITS[field]
    if len(value) > limit:
        raise GeoReportError(
            400, f"{field}: expected at most {limit} characters, got {len(value)}"
        )
    return value


def parse_coordinate(text: str, *, field: str) -> float | None:
    """``lat`` or ``long`` as a finite number in range; None when empty.

    Raises:
        GeoReportError: 400, not a number, not finite or out of range.
    """
    if not text.strip():
        return None
    bound = 90.0 if field == "lat" else 180.0
    try:
        value = float(text)
    except ValueError as exc:
        raise GeoReportError(
            400, f"{field}: expected a number, got {text[:40]!r}"
        ) from exc
    if not math.isfinite(value) or abs(value) > bound:
        raise GeoReportError(
            400,
            f"{field}: expected a finite number from {-bound:g} to {bound:g}, "
            f"got {text[:40]!r}",
        )
    return value


def parse_datetime(text: str, *, field: str) -> datetime:
    """A w3c/ISO 8601 date-time as UTC; one without an offset is county time.

    Raises:
        GeoReportError: 400, not an ISO 8601 date-time.
    """
    raw = text.strip()
    lost = _LOST_PLUS.fullmatch(raw)
    if lost:
        raw = f"{lost[1]}+{lost[2]}"
    try:
        if len(raw) > 40:  # noqa: PLR2004 - the longest ISO 8601 date-time
            raise ValueError(raw)  # noqa: TRY301 - one message for both
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise GeoReportError(
            400,
            f"{field}: expected an ISO 8601 date-time such as "
            f"2026-12-05T08:00:00+08:00, got {text[:40]!r}",
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=COUNTY_TZ)
    return value.astimezone(UTC)


def date_window(
    start: datetime | None, end: datetime | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """The requested_datetime range to search: the last 90 days by default.

    Raises:
        GeoReportError: 400, the range is reversed or longer than 90 days.
    """
    end = end or (now if start is None else start + MAX_SPAN)
    start = start or end - MAX_SPAN
    if start > end:
        raise GeoReportError(
            400, "start_date: expected a date-time before end_date, got a later one"
        )
    if end - start > MAX_SPAN:
        days = (end - start) / timedelta(days=1)
        raise GeoReportError(
            400,
            f"start_date..end_date: expected at most 90 days, got {days:.1f} days",
        )
    return start, end


def parse_id(text: str) -> int | None:
    """A service_request_id in the path; None when no complaint can have it."""
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def parse_ids(text: str) -> list[int]:
    """A comma-separated service_request_id list.

    Raises:
        GeoReportError: 400, too many ids or one that is not an id.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_IDS:
        raise GeoReportError(
            400, f"service_request_id: expected at most {MAX_IDS} ids, got {len(parts)}"
        )
    ids = []
    for part in parts:
        value = parse_id(part)
        if value is None:
            raise GeoReportError(
                400,
                f"service_request_id: expected whole numbers from 1 to {MAX_ID}, "
                f"got {part[:20]!r}",
            )
        ids.append(value)
    return ids


def parse_codes(text: str) -> list[str]:
    """A comma-separated service_code list.

    Raises:
        GeoReportError: 400, too many codes.
    """
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if len(codes) > MAX_CODES:
        raise GeoReportError(
            400, f"service_code: expected at most {MAX_CODES} codes, got {len(codes)}"
        )
    return [c[:32] for c in codes]


def parse_statuses(text: str) -> frozenset[str]:
    """A comma-separated status list (``open``, ``closed``).

    Raises:
        GeoReportError: 400, another status.
    """
    wanted = frozenset(s.strip().lower() for s in text.split(",") if s.strip())
    if not wanted <= {"open", "closed"}:
        raise GeoReportError(400, f"status: expected open or closed, got {text[:40]!r}")
    return wanted


def sniff_image(data: bytes) -> str:
    """The extension of an uploaded photo, by its first bytes.

    Raises:
        GeoReportError: 400, empty, too large or not JPEG/PNG/GIF/WebP.
    """
    if not data:
        raise GeoReportError(400, "media: expected an image, got an empty file")
    if len(data) > MAX_MEDIA:
        raise GeoReportError(
            400, f"media: expected at most {MAX_MEDIA} bytes, got {len(data)}"
        )
    for magic, ext in _IMAGES:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise GeoReportError(
        400, f"media: expected a JPEG, PNG, GIF or WebP image, got {data[:8]!r}"
    )


def county_iso(value: datetime | None) -> str | None:
    """``value`` in county time, ISO 8601 with its offset (``+08:00``)."""
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(COUNTY_TZ).isoformat(timespec="seconds")


def _finite(value: float | None, bound: float) -> float | None:
    """A stored coordinate, or None when it could not be one (nan, inf, range)."""
    if value is None or not math.isfinite(value) or abs(value) > bound:
        return None
    return value


def public_request(c: Complaint, *, service_name: str, agency: str) -> dict[str, Any]:
    """A public complaint as GeoReport's request; anonymised when real-name."""
    full = not c.real_name
    label = workflow.LABELS.get(c.state, c.state)
    return {
        "service_request_id": str(c.id),
        "status": workflow.open311_status(c.state),
        "status_notes": clean_text(c.reply or label) if full else label,
        "service_name": clean_text(service_name),
        "service_code": c.service_code,
        "description": clean_text(c.description) if full else "",
        "agency_responsible": clean_text(agency),
        "service_notice": "",
        "requested_datetime": county_iso(c.received_at),
        "updated_datetime": county_iso(c.updated_at),
        "expected_datetime": county_iso(c.due_at),
        "address": clean_text(c.place) if full else "",
        "address_id": clean_text(c.address_id) if full else "",
        "zipcode": "",
        "lat": _finite(c.lat, 90.0) if full else None,
        "long": _finite(c.lon, 180.0) if full else None,
        "media_url": clean_text(c.media_url) if full else "",
    }


def discovery(*, url: str, contact: str, key_service: str) -> dict[str, Any]:
    """The Service Discovery document for the endpoint at ``url``."""
    return {
        "changeset": CHANGESET,
        "contact": contact,
        "key_service": key_service,
        "endpoints": [
            {
                "specification": SPEC,
                "url": url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": list(FORMATS.values()),
            }
        ],
    }


def to_xml(root: str, data: Any) -> bytes:  # noqa: ANN401 - a list or a dict
    """``data`` as the spec's XML: lists repeat their singular element."""

    def fill(parent: ET.Element, value: Any) -> None:  # noqa: ANN401
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, list):
                    holder = ET.SubElement(parent, k)
                    for x in v:
                        fill(ET.SubElement(holder, k.removesuffix("s")), x)
                else:
                    fill(ET.SubElement(parent, k), v)
        elif isinstance(value, bool):
            parent.text = str(value).lower()
        elif value is not None:
            parent.text = clean_text(str(value))

    top = ET.Element(root)
    if isinstance(data, list):
        for item in data:
            fill(ET.SubElement(top, _ITEM.get(root, "item")), item)
    else:
        fill(top, data)
    body: bytes = ET.tostring(top, encoding="UTF-8", xml_declaration=True)
    return body
