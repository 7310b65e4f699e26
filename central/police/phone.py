"""Phone reports in every form Traccar's OsmAnd decoder reads, and their verdict.

Pure: the request's query string, body and content type in; one
:class:`PhoneReport` per location out, or a :class:`PhoneReportError` naming
the field that was wrong. Read as Traccar's ``OsmAndProtocolDecoder`` reads
them: query or form parameters (``id``/``deviceid``/``device_id``,
``lat``/``lon``, ``latitude``/``longitude`` or ``location=lat,lon``,
``timestamp`` in epoch seconds, milliseconds, ISO 8601 or
``yyyy-MM-dd HH:mm:ss``, ``speed`` in knots, ``bearing``/``heading``,
``altitude``, ``accuracy``, ``hdop``, ``batt``/``battery``, ``charge``,
``alarm``, ``mock``, ``valid``, ``cell``, ``wifi``) whatever the content
type, and Traccar Client 9's JSON (``{"location": {"coords": {...},
"battery": {...}, ...}, "device_id": ...}``, the same with the coordinates
flat in ``location``, an array of locations, or one flat object of the query
names). :func:`judge` then decides, against the receiver's ``now``, what a
report is worth: a trusted fix, or a report without one (cell or Wi-Fi
only, ``valid=false``, a mock location, too uncertain), and whether its
clock ran ahead.

The HTTP route, the identifier look-up and storing are not handled here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from central.errors import CentralError, InvalidError
from edge.protocol.police import PositionBody

MAX_BODY_BYTES = 32 * 1024  # Traccar Client 9 sends about 600 bytes a location
MAX_FIELDS = 100  # query or form parameters in one report
MAX_LOCATIONS = 50  # locations in one JSON batch
KNOT_MPS = 0.514444
_EPOCH_MS_FROM = 2**31 - 1  # Traccar: below Integer.MAX_VALUE it is seconds
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_ALARM = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_EPOCH = re.compile(r"^\d{1,16}(\.\d{1,9})?$")
_TRUE, _FALSE = ("true", "1"), ("false", "0")


class PhoneReportError(CentralError, ValueError):
    """A phone report that cannot be read; the message starts with the field."""

    def __init__(self, field: str, expected: str, got: object) -> None:
        self.field = field
        shown = got if isinstance(got, str) else repr(got)
        if isinstance(shown, str) and len(shown) > 40:  # noqa: PLR2004 - echo no essays
            shown = shown[:40] + "…"
        super().__init__(f"{field}: expected {expected}, got {shown!r}")


@dataclass(frozen=True, slots=True)
class PhoneFix:
    """Coordinates and what the phone said about them."""

    lat: float
    lon: float
    speed_mps: float | None = None
    course: float | None = None
    altitude_m: float | None = None
    accuracy_m: float | None = None

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):  # noqa: PLR2004
            raise PhoneReportError("lat/lon", "a point on Earth", (self.lat, self.lon))


@dataclass(frozen=True, slots=True)
class PhoneReport:
    """One location report of a phone, as read; ``fix`` None: no coordinates."""

    identifier: str
    fix: PhoneFix | None = None
    at: datetime | None = None
    valid: bool = True
    mock: bool = False
    battery: float | None = None
    charging: bool | None = None
    alarm: str = ""
    cells: int = 0
    wifi: int = 0


@dataclass(frozen=True, slots=True)
class PhoneRules:
    """What a phone's fix must be to place an officer."""

    max_ahead_s: float = 300.0  # a clock further ahead is a phone's wrong clock
    max_accuracy_m: float = 500.0  # beyond: a cell-tower guess, not a fix

    def __post_init__(self) -> None:
        if self.max_ahead_s <= 0 or self.max_accuracy_m <= 0:
            raise InvalidError(f"expected positive phone rules, got {self}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a report is worth.

    ``position`` is the trusted fix to store (None: the officer stays where
    the last trusted fix put them); ``reason`` says why there is none
    (``no_position``, ``invalid``, ``mock``, ``accuracy``); ``at`` is the
    report's time, the receipt time where the phone had none or ran ahead
    (``ahead`` True).
    """

    at: datetime
    position: PositionBody | None
    reason: str = ""
    ahead: bool = False


# -- reading -----------------------------------------------------------------------
def read_request(*, query: str, body: bytes, content_type: str) -> list[PhoneReport]:
    """Every report in one request (several only for a JSON batch).

    Raises:
        PhoneReportError: the request cannot be read; the field is named.
    """
    text = _text(body)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) or ("json" in content_type.lower() and stripped):
        fallback = _identifier(_pairs(query)) if query else ""
        return read_json(_load_json(stripped), fallback_id=fallback)
    pairs = _pairs(query) if query else _pairs(text.strip())
    return [read_params(pairs)]


def read_params(pairs: list[tuple[str, str]]) -> PhoneReport:
    """One report from query or form parameters (repeated names: the last wins).

    Raises:
        PhoneReportError: a parameter cannot be read; it is named.
    """
    last: dict[str, str] = {}
    cells = wifi = 0
    for key, value in pairs:
        if key == "cell":
            _check_cell(value)
            cells += 1
        elif key == "wifi":
            _check_wifi(value)
            wifi += 1
        else:
            last[key] = value.strip()
    identifier = _identifier(pairs)
    knots = _number(last, "speed")
    return PhoneReport(
        identifier=identifier,
        fix=_fix(
            last,
            speed_mps=None if knots is None else knots * KNOT_MPS,
            course=_number(last, "bearing", "heading"),
            altitude_m=_number(last, "altitude"),
            accuracy_m=_accuracy(last),
        ),
        at=parse_time(last.get("timestamp", "")),
        valid=_flag(last, "valid") is not False,
        mock=_flag(last, "mock") is True,
        battery=_percent(_number(last, "batt", "battery")),
        charging=_flag(last, "charge"),
        alarm=_alarm(last.get("alarm", "")),
        cells=cells,
        wifi=wifi,
    )


def read_json(doc: object, *, fallback_id: str = "") -> list[PhoneReport]:
    """Reports from a JSON document: Traccar Client 9's shape, or a flat one.

    Raises:
        PhoneReportError: the document cannot be read; the field is named.
    """
    if not isinstance(doc, dict):
        raise PhoneReportError("body", "a JSON object", type(doc).__name__)
    identifier = _text_field(doc, "device_id") or fallback_id
    if "location" not in doc:  # one flat object of the query names
        pairs = [
            (str(k), _scalar(k, v))
            for k, v in doc.items()
            if v is not None and not isinstance(v, (dict, list))
        ]
        if fallback_id and not _identifier(pairs, required=False):
            pairs.append(("id", fallback_id))
        return [read_params(pairs)]
    locations = doc["location"]
    if isinstance(locations, dict):
        locations = [locations]
    if not isinstance(locations, list) or not locations:
        raise PhoneReportError("location", "an object or a list of them", locations)
    if len(locations) > MAX_LOCATIONS:
        raise PhoneReportError(
            "location", f"at most {MAX_LOCATIONS} locations", len(locations)
        )
    if not identifier:
        raise PhoneReportError("device_id", "the phone identifier", "nothing")
    return [_json_location(loc, identifier) for loc in locations]


def _json_location(loc: object, identifier: str) -> PhoneReport:
    if not isinstance(loc, dict):
        raise PhoneReportError("location", "an object", type(loc).__name__)
    coords = loc.get("coords", loc)
    if not isinstance(coords, dict):
        raise PhoneReportError("location.coords", "an object", type(coords).__name__)
    battery = loc.get("battery") or {}
    if not isinstance(battery, dict):
        raise PhoneReportError("location.battery", "an object", battery)
    extras = loc.get("extras") or {}
    if not isinstance(extras, dict):
        raise PhoneReportError("location.extras", "an object", extras)
    flat = coords is loc  # the coordinates beside battery, extras, ...
    values = {
        k: _scalar(f"location.coords.{k}", v)
        for k, v in coords.items()
        if not (flat and isinstance(v, (dict, list)))
    }
    speed = _number(values, "speed")
    heading = _number(values, "heading")
    level = _number({"level": _scalar("battery.level", battery.get("level"))}, "level")
    return PhoneReport(
        identifier=identifier,
        fix=_fix(
            values,
            speed_mps=None if speed is None or speed < 0 else speed,
            course=None if heading is None or heading < 0 else heading,
            altitude_m=_number(values, "altitude"),
            accuracy_m=_accuracy(values),
        ),
        at=parse_time(_scalar("location.timestamp", loc.get("timestamp"))),
        mock=_json_flag(loc, "mock") is True,
        battery=None if level is None or level < 0 else _percent(level * 100),
        charging=_json_flag(battery, "is_charging"),
        alarm=_alarm(_scalar("alarm", extras.get("alarm", loc.get("alarm")))),
    )


def parse_time(raw: str) -> datetime | None:
    """A report's time as Traccar reads ``timestamp``; "" is None.

    Epoch seconds (below 2**31 - 1) or milliseconds, ISO 8601 (naive: UTC),
    or ``yyyy-MM-dd HH:mm:ss`` (UTC), before the year 2100.

    Raises:
        PhoneReportError: anything else, naming ``timestamp``.
    """
    raw = raw.strip()
    if not raw:
        return None
    expected = "epoch seconds or ms, ISO 8601 or yyyy-MM-dd HH:mm:ss before 2100"
    if len(raw) > 40:  # noqa: PLR2004 - the longest ISO 8601 with offset is 35
        raise PhoneReportError("timestamp", expected, raw)
    try:
        if _EPOCH.fullmatch(raw):
            value = float(raw)
            if value >= _EPOCH_MS_FROM:
                value /= 1000
            parsed = datetime.fromtimestamp(value, UTC)
        elif "T" in raw:
            parsed = datetime.fromisoformat(raw)
        else:
            parsed = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - UTC below
    except (ValueError, OverflowError, OSError) as exc:
        raise PhoneReportError("timestamp", expected, raw) from exc
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed >= _LATEST:
        raise PhoneReportError("timestamp", expected, raw)
    return parsed.astimezone(UTC)


# -- judging -----------------------------------------------------------------------
def judge(report: PhoneReport, *, now: datetime, rules: PhoneRules) -> Verdict:
    """What a report is worth at ``now``.

    A time more than ``max_ahead_s`` ahead of ``now`` (a phone sending its
    local time as UTC) is replaced by ``now``: a fix from the future would
    hold the officer there until the future came.
    """
    at, ahead = report.at or now, False
    if at - now > timedelta(seconds=rules.max_ahead_s):
        at, ahead = now, True
    fix = report.fix
    reason = ""
    if fix is None:
        reason = "no_position"
    elif not report.valid:
        reason = "invalid"
    elif report.mock:
        reason = "mock"
    elif fix.accuracy_m is not None and fix.accuracy_m > rules.max_accuracy_m:
        reason = "accuracy"
    if fix is None or reason:
        return Verdict(at=at, position=None, reason=reason, ahead=ahead)
    try:
        position = PositionBody(
            lat=fix.lat,
            lon=fix.lon,
            fix_ts=at,
            speed_mps=fix.speed_mps or 0.0,
            course=None if fix.course is None else fix.course % 360,
            accuracy_m=fix.accuracy_m,
            altitude_m=fix.altitude_m,
            battery=report.battery,
            charging=report.charging,
            source="osmand",
            sos=report.alarm == "sos",
        )
    except ValidationError as exc:  # the reader checked every bound already
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise PhoneReportError(field, first["msg"], first.get("input")) from exc
    return Verdict(at=at, position=position, ahead=ahead)


# -- helpers -----------------------------------------------------------------------
def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PhoneReportError("body", "UTF-8 text", body[:20].hex()) from exc


def _pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:
        raise PhoneReportError("parameters", f"at most {MAX_FIELDS}", "more") from exc


def _load_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise PhoneReportError("body", "JSON numbers (no NaN or Infinity)", constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError as exc:
        raise PhoneReportError("body", "JSON nested a few levels", "deeper") from exc
    except json.JSONDecodeError as exc:
        raise PhoneReportError("body", "JSON", f"{exc.msg} at {exc.pos}") from exc


def _identifier(pairs: list[tuple[str, str]], *, required: bool = True) -> str:
    found = ""
    for key, value in pairs:
        if key in {"id", "deviceid", "device_id"}:
            found = value.strip()
    if not found and required:
        raise PhoneReportError("id", "the phone identifier issued for it", "nothing")
    if len(found) > 128:  # noqa: PLR2004 - issued ones are 24 characters
        raise PhoneReportError("id", "an issued phone identifier", "a longer one")
    return found


def _text_field(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise PhoneReportError(key, "a string", value)
    return str(value).strip()


def _scalar(field: object, value: object) -> str:
    """A JSON member as the text a query parameter would carry."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise PhoneReportError(str(field), "a number, string or boolean", value)


def _number(values: dict[str, str], *names: str) -> float | None:
    for name in names:
        raw = values.get(name, "")
        if raw == "":
            continue
        try:
            value = float(raw)
        except ValueError as exc:
            raise PhoneReportError(name, "a number", raw) from exc
        if not math.isfinite(value):
            raise PhoneReportError(name, "a finite number", raw)
        return value
    return None


def _fix(
    values: dict[str, str],
    *,
    speed_mps: float | None,
    course: float | None,
    altitude_m: float | None,
    accuracy_m: float | None,
) -> PhoneFix | None:
    lat = _number(values, "lat", "latitude")
    lon = _number(values, "lon", "longitude")
    if values.get("location"):
        parts = values["location"].split(",")
        if len(parts) != 2:  # noqa: PLR2004
            raise PhoneReportError("location", "'lat,lon'", values["location"])
        lat = _number({"location": parts[0]}, "location")
        lon = _number({"location": parts[1]}, "location")
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        missing = "lat" if lat is None else "lon"
        raise PhoneReportError(missing, "both lat and lon", "only one of them")
    if not -90 <= lat <= 90:  # noqa: PLR2004
        raise PhoneReportError("lat", "-90..90", lat)
    if not -180 <= lon <= 180:  # noqa: PLR2004
        raise PhoneReportError("lon", "-180..180", lon)
    if lat == 0 and lon == 0:
        return None  # Traccar's "no fix": the last known position stands
    return PhoneFix(
        lat=lat,
        lon=lon,
        # A value out of any sensible range is a sensor's "unknown", not a
        # reason to lose the fix (the app would retry it for ever).
        speed_mps=None if speed_mps is None or not 0 <= speed_mps <= 200 else speed_mps,  # noqa: PLR2004
        course=None if course is None or course < 0 else course,
        altitude_m=None
        if altitude_m is None or not -1000 <= altitude_m <= 20_000  # noqa: PLR2004
        else altitude_m,
        accuracy_m=None
        if accuracy_m is None or not 0 <= accuracy_m <= 100_000  # noqa: PLR2004
        else accuracy_m,
    )


def _accuracy(values: dict[str, str]) -> float | None:
    """``accuracy`` in metres; else OsmAnd's ``hdop``, which carries the same.

    OsmAnd fills its ``{3}`` (hdop) with the phone's accuracy estimate in
    metres (PhoneTrack reads it as ``acc``), not a dilution of precision.
    """
    return _number(values, "accuracy", "hdop")


def _percent(value: float | None) -> float | None:
    return None if value is None or not 0 <= value <= 100 else value  # noqa: PLR2004


def _flag(values: dict[str, str], name: str) -> bool | None:
    raw = values.get(name, "").lower()
    if raw == "":
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise PhoneReportError(name, "true, false, 1 or 0", raw)


def _json_flag(values: dict[str, Any], name: str) -> bool | None:
    return _flag({name: _scalar(name, values.get(name))}, name)


def _alarm(raw: str) -> str:
    raw = raw.strip()
    if raw and not _ALARM.fullmatch(raw):
        raise PhoneReportError("alarm", "a name such as sos", raw)
    return raw


def _check_cell(value: str) -> None:
    parts = value.split(",")
    if len(parts) not in {4, 5} or not all(
        re.fullmatch(r"-?\d{1,10}", p) for p in parts
    ):
        raise PhoneReportError("cell", "mcc,mnc,lac,cellId[,signal]", value)


def _check_wifi(value: str) -> None:
    parts = value.split(",")
    mac = r"[0-9A-Fa-f]{2}([-:][0-9A-Fa-f]{2}){5}"
    if len(parts) != 2:  # noqa: PLR2004 - mac and signal
        raise PhoneReportError("wifi", "mac,signal", value)
    if not re.fullmatch(mac, parts[0]) or not re.fullmatch(r"-?\d{1,4}", parts[1]):
        raise PhoneReportError("wifi", "mac,signal", value)
