"""The OsmAnd / Traccar Client phone endpoint, against Traccar's own test requests.

The query strings and JSON bodies below are copied verbatim from Traccar's
``OsmAndProtocolDecoderTest.java`` (traccar/traccar): only the device
identifier is swapped for the one issued here. Where Traccar's test
expects a position, ``/osmand`` must answer 200 and store what the request
said; where it expects none (no identifier), 400. Central runs through
TestClient on SQLite and PostgreSQL with a manual clock; no broker is needed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select
from support.central import central_services, sender

from central.app import create_app
from central.fleet import registry
from central.models import Device, Event
from central.operators.auth import create_operator
from central.police.models import Alarm, Position
from central.police.phone import (
    MAX_BODY_BYTES,
    PhoneReportError,
    PhoneRules,
    judge,
    parse_time,
    read_request,
)
from central.police.service import PoliceService
from edge.clock import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from central.api.deps import Services

PASSWORD = "correct horse battery"
Params = dict[str, str | float]
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
LAT, LON = 29.145, 113.118

# OsmAndProtocolDecoderTest.testDecodeQuery, verbatim; True: Traccar decodes
# a position (verifyPosition / verifyNotNull), False: it refuses (verifyNull).
TRACCAR_QUERIES = [
    (
        "/?id=123456&timestamp=1377177267&cell=257,02,16,2224&cell=257,02,16,2223,-90&wifi=00-14-22-01-23-45,-80&wifi=00-1C-B3-09-85-15,-70",
        True,
    ),
    ("/?timestamp=1377177267&lat=60.0&lon=30.0", False),
    (
        "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0",
        True,
    ),
    (
        "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0&altitude=224.0&speed=0.0",
        True,
    ),
    (
        "/?lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=0.0&id=353861053849681",
        True,
    ),
    (
        "/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0&hdop=0.0",
        True,
    ),
    ("/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0", True),
    (
        "/?lat=60.0&lon=30.0&speed=0.0&heading=0.0&vacc=0&hacc=0&altitude=0&deviceid=123456",
        True,
    ),
    (
        "/?id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000&batt=87",
        True,
    ),
    ("/?id=123456&timestamp=1377177267&location=60.0,30.0", True),
    (
        "/?id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571&bearing=7.19889788244&speed=40&ignition=true&rpm=933&fuel=24",
        True,
    ),
]

# OsmAndProtocolDecoderTest.testDecodeJson, verbatim: Traccar Client 9's body
# (the transistorsoft background-geolocation location, plus device_id).
TRACCAR_JSON = [
    '{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{},"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}',
    '{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{"device_string_test":"long_device_id","device_bool_test":true,"device_bool_false_test":false,"device_integer_test":1,"device_double_test":1.345,"device_very_long_double_test":1763636.3442},"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}',
    '{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,"heading":-1},"is_moving":false,"age":188,"odometer":0,"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange","battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown","confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}',
    '{"location":{"event":"motionchange","is_moving":false,"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z","odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}',
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def services(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Services]:
    svc = central_services(db_url, tmp_path, clock=clock, checkpoint_every=50)
    svc.police = PoliceService(clock=clock, sender=sender(svc))
    with Session(svc.engine) as session:
        create_operator(
            session, username="cmd", password=PASSWORD, role="police", now=NOW
        )
        for device, kind in (
            ("hh-phone", "handheld"),
            ("hh-other", "handheld"),
            ("cam-1", "camera"),
        ):
            registry.register(session, device_id=device, kind=kind, now=NOW)
    yield svc
    svc.engine.dispose()


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as client:
        yield client


@pytest.fixture
def headers(api: TestClient) -> dict[str, str]:
    r = api.post("/api/v1/auth/token", data={"username": "cmd", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def ident(api: TestClient, headers: dict[str, str]) -> str:
    r = api.post("/api/v1/police/officers/hh-phone/osmand", headers=headers)
    assert r.status_code == 201, r.text
    identifier: str = r.json()["identifier"]
    return identifier


def with_id(request: str, ident: str) -> str:
    """Traccar's request with its device identifier swapped for ours."""
    swapped = re.sub(r"\b(id|deviceid)=[^&]*", rf"\1={ident}", request)
    return re.sub(r'"device_id":"[^"]*"', f'"device_id":"{ident}"', swapped)


def officer(api: TestClient, headers: dict[str, str], device: str) -> dict[str, Any]:
    rows = api.get("/api/v1/police/officers", headers=headers).json()
    found: dict[str, Any] = next(o for o in rows if o["device"] == device)
    return found


def stored(services: Services, device: str = "hh-phone") -> list[Position]:
    with Session(services.engine) as session:
        return list(
            session.exec(
                select(Position)
                .where(Position.device == device)
                .order_by(col(Position.id))
            ).all()
        )


def events(services: Services, kind: str) -> list[dict[str, Any]]:
    with Session(services.engine) as session:
        rows = session.exec(
            select(Event).where(Event.type == kind).order_by(col(Event.seq))
        ).all()
        return [dict(r.body) for r in rows]


def metric(services: Services, outcome: str) -> float:
    value = services.metrics.registry.get_sample_value(
        "baling_phone_reports_total", {"outcome": outcome}
    )
    return value or 0.0


# -- Traccar's own requests ------------------------------------------------------------
@pytest.mark.parametrize(("request_line", "decoded"), TRACCAR_QUERIES)
def test_traccar_query_requests_answer_as_traccar(
    api: TestClient, ident: str, request_line: str, *, decoded: bool
) -> None:
    for method in ("GET", "POST"):
        r = api.request(method, "/osmand" + with_id(request_line, ident)[1:])
        assert r.status_code == (200 if decoded else 400), r.text
        if decoded:
            assert r.content == b""  # Traccar's answer: 200, empty
        else:
            assert r.json()["detail"].startswith("id: expected")


def test_traccar_query_values_are_stored_in_our_units(
    api: TestClient, headers: dict[str, str], ident: str, services: Services
) -> None:
    requests = [line for line, decoded in TRACCAR_QUERIES if decoded]
    for line in requests:
        assert api.get("/osmand" + with_id(line, ident)[1:]).status_code == 200
    fixes = stored(services)
    # The cell/Wi-Fi-only report is no position; every other one is a fix.
    assert len(fixes) == len(requests) - 1
    first = fixes[0]  # 2016-01-27T18:55:47Z, hdop=6.0 (OsmAnd's accuracy in m)
    assert (first.lat, first.lon) == (42.06288, -88.23412)
    assert first.fix_ts.replace(tzinfo=UTC) == datetime(
        2016, 1, 27, 18, 55, 47, tzinfo=UTC
    )
    assert first.accuracy_m == 6.0
    assert first.source == "osmand"
    ms = fixes[1]  # timestamp=1442068686579: milliseconds
    assert ms.fix_ts.replace(tzinfo=UTC) == datetime(
        2015, 9, 12, 14, 38, 6, 579000, tzinfo=UTC
    )
    local = fixes[2]  # timestamp=2014-06-04+09%3A10%3A11
    assert local.fix_ts.replace(tzinfo=UTC) == datetime(
        2014, 6, 4, 9, 10, 11, tzinfo=UTC
    )
    location = fixes[7]  # location=60.0,30.0
    assert (location.lat, location.lon) == (60.0, 30.0)
    last = fixes[8]  # speed=40 knots, bearing=7.19889788244
    assert last.speed_mps == pytest.approx(40 * 0.514444)
    assert last.course == pytest.approx(7.19889788244)
    cell = events(services, "phone_report")
    assert cell[0]["reason"] == "no_position"
    assert (cell[0]["cells"], cell[0]["wifi"]) == (2, 2)
    # No timestamp means "now": the first such report placed the officer
    # (the next, as old as it, is kept in the track only).
    placed = officer(api, headers, "hh-phone")
    assert (placed["lat"], placed["lon"]) == (60.0, 30.0)
    assert placed["fix_ts"] == NOW.isoformat()
    assert events(services, "position")[6]["battery"] == 87


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_traccar_client_json_bodies_any_content_type(
    api: TestClient,
    ident: str,
    services: Services,
    content_type: str | None,
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    for body in TRACCAR_JSON:
        r = api.post("/osmand", content=with_id(body, ident), headers=headers)
        assert r.status_code == 200, r.text
        assert r.content == b""
    fixes = stored(services)
    assert [(f.lat, f.lon) for f in fixes] == [
        (37.4219983, -122.084),
        (37.4219983, -122.084),
        (-6.1148096, 106.6837015),  # the mock location (third) is not a fix
    ]
    assert fixes[0].accuracy_m == 5
    assert fixes[0].course is None  # heading -1: unknown
    assert fixes[0].fix_ts.replace(tzinfo=UTC) == datetime(
        2025, 6, 15, 13, 45, 12, 862000, tzinfo=UTC
    )
    assert fixes[2].speed_mps == pytest.approx(18.67)  # m/s in JSON
    assert fixes[2].course == 63
    bodies = events(services, "position")
    assert bodies[0]["battery"] == 100  # level 1 → 100 %
    assert bodies[0]["charging"] is False
    assert bodies[0]["altitude_m"] == 5
    assert bodies[2]["battery"] == pytest.approx(79)
    mock = events(services, "phone_report")
    assert [m["reason"] for m in mock] == ["mock"]
    assert mock[0]["battery"] is None  # level -1: unknown
    assert metric(services, "mock") == 1


def test_flat_json_form_body_and_text_plain_query(
    api: TestClient, ident: str, services: Services
) -> None:
    flat_location = {
        "location": {
            "timestamp": "2026-12-05T07:59:00Z",
            "latitude": LAT,
            "longitude": LON,
            "accuracy": 12,
            "speed": 1.5,
            "heading": 90,
            "battery": {"level": 0.5, "is_charging": True},
        },
        "device_id": ident,
    }
    flat_root = {"id": ident, "lat": LAT + 0.001, "lon": LON, "batt": 40}
    assert api.post("/osmand", json=flat_location).status_code == 200
    assert api.post("/osmand", json=flat_root).status_code == 200
    form = {"id": ident, "lat": str(LAT + 0.002), "lon": str(LON), "accuracy": "7"}
    assert api.post("/osmand", data=form).status_code == 200
    text = f"id={ident}&latitude={LAT + 0.003}&longitude={LON}&heading=180"
    plain = api.post("/osmand", content=text, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 200, plain.text
    # device_id in the query, the JSON without one
    body = json.dumps({"location": flat_location["location"]})
    assert api.post(f"/osmand?device_id={ident}", content=body).status_code == 200
    fixes = stored(services)
    assert [f.lat for f in fixes] == pytest.approx(
        [LAT, LAT + 0.001, LAT + 0.002, LAT + 0.003, LAT]
    )
    assert (fixes[0].accuracy_m, fixes[0].speed_mps, fixes[0].course) == (12, 1.5, 90)
    assert fixes[2].accuracy_m == 7
    assert fixes[3].course == 180


# -- what a report is worth ------------------------------------------------------------
def test_a_clock_eight_hours_ahead_never_freezes_the_officer(
    api: TestClient,
    headers: dict[str, str],
    ident: str,
    services: Services,
    clock: ManualClock,
) -> None:
    ahead = int((NOW + timedelta(hours=8)).timestamp())
    assert (
        api.get(
            "/osmand", params={"id": ident, "lat": LAT, "lon": LON, "timestamp": ahead}
        ).status_code
        == 200
    )
    assert officer(api, headers, "hh-phone")["fix_ts"] == NOW.isoformat()
    assert metric(services, "ts_future") == 1
    clock.advance(60)
    later = int(clock.now().timestamp())
    params: Params = {"id": ident, "lat": LAT + 0.01, "lon": LON, "timestamp": later}
    assert api.get("/osmand", params=params).status_code == 200
    moved = officer(api, headers, "hh-phone")
    assert moved["lat"] == pytest.approx(LAT + 0.01)
    assert moved["fix_ts"] == clock.now().isoformat()
    # Four minutes ahead is a phone's clock drifting, not local time: kept.
    drift = clock.now() + timedelta(minutes=4)
    params = {
        "id": ident,
        "lat": LAT,
        "lon": LON,
        "timestamp": drift.isoformat(),
    }
    assert api.get("/osmand", params=params).status_code == 200
    assert officer(api, headers, "hh-phone")["fix_ts"] == drift.isoformat()
    assert metric(services, "ts_future") == 1


def test_cell_only_report_keeps_the_last_position_and_takes_the_battery(
    api: TestClient, headers: dict[str, str], ident: str, services: Services
) -> None:
    assert (
        api.get(
            "/osmand", params={"id": ident, "lat": LAT, "lon": LON, "accuracy": 8}
        ).status_code
        == 200
    )
    cell_only = f"/osmand?id={ident}&cell=460,00,4301,20851,-71&batt=33&charge=true"
    assert api.get(cell_only).status_code == 200
    zero: Params = {"id": ident, "lat": 0, "lon": 0}  # Traccar's "no fix"
    assert api.get("/osmand", params=zero).status_code == 200
    invalid: Params = {"id": ident, "lat": LAT + 1, "lon": LON, "valid": "false"}
    assert api.get("/osmand", params=invalid).status_code == 200
    card = officer(api, headers, "hh-phone")
    assert (card["lat"], card["lon"]) == (LAT, LON)
    assert card["accuracy_m"] == 8
    assert card["battery"] == 33
    assert card["phone"] is True
    assert card["last_seen"] == NOW.isoformat()
    assert len(stored(services)) == 1
    reports = events(services, "phone_report")
    assert [r["reason"] for r in reports] == ["no_position", "no_position", "invalid"]
    assert reports[0]["charging"] is True
    # Heard from, never online: presence is the broker's word.
    with Session(services.engine) as session:
        assert session.get_one(Device, "hh-phone").online is False


def test_accuracy_feeds_the_fix_filter(
    api: TestClient, headers: dict[str, str], ident: str, services: Services
) -> None:
    good: Params = {"id": ident, "lat": LAT, "lon": LON, "accuracy": 20}
    assert api.get("/osmand", params=good).status_code == 200
    rough: Params = {"id": ident, "lat": LAT + 0.05, "lon": LON, "accuracy": 1500}
    assert api.get("/osmand", params=rough).status_code == 200
    card = officer(api, headers, "hh-phone")
    assert (card["lat"], card["accuracy_m"]) == (LAT, 20)
    assert [r["reason"] for r in events(services, "phone_report")] == ["accuracy"]
    assert metric(services, "accuracy") == 1


def test_alarm_sos_from_query_and_from_json_extras(
    api: TestClient, ident: str, services: Services, clock: ManualClock
) -> None:
    assert (
        api.get(
            "/osmand", params={"id": ident, "lat": LAT, "lon": LON, "alarm": "sos"}
        ).status_code
        == 200
    )
    clock.advance(120)
    body = {
        "location": {
            "timestamp": clock.now().isoformat(),
            "coords": {"latitude": 0, "longitude": 0, "accuracy": -1},
            "extras": {"alarm": "sos"},
        },
        "device_id": ident,
    }
    assert api.post("/osmand", json=body).status_code == 200
    with Session(services.engine) as session:
        alarms = session.exec(
            select(Alarm).where(Alarm.kind == "sos").order_by(col(Alarm.id))
        ).all()
    # The phone's SOS is still open: the second press joins it (one officer
    # in distress is one alarm) and, without a fix, does not move it.
    assert len(alarms) == 1
    assert alarms[0].detail["presses"] == 2
    assert (alarms[0].lat, alarms[0].lon) == (LAT, LON)
    other: Params = {"id": ident, "lat": LAT, "lon": LON, "alarm": "lowBattery"}
    assert api.get("/osmand", params=other).status_code == 200
    assert events(services, "position")[-1]["sos"] is False


# -- the attacker ----------------------------------------------------------------------
def test_the_guessable_device_id_and_dead_identifiers_are_refused(
    api: TestClient, headers: dict[str, str], ident: str, services: Services
) -> None:
    def post(identifier: str) -> int:
        body = {"location": {"coords": {"latitude": LAT, "longitude": LON}}}
        return api.post("/osmand", json={**body, "device_id": identifier}).status_code

    def get(identifier: str) -> int:
        return api.get(
            "/osmand", params={"id": identifier, "lat": LAT, "lon": LON}
        ).status_code

    for guess in ("hh-phone", "cam-1", "", "x" * 200):
        assert get(guess) == 400
        assert post(guess) == 400
    reissue = "/api/v1/police/officers/hh-phone/osmand"
    fresh = api.post(reissue, headers=headers).json()["identifier"]
    assert get(ident) == 400  # replaced
    assert get(fresh) == 200
    assert api.delete(reissue, headers=headers).status_code == 204
    assert get(fresh) == 400  # revoked
    other = api.post("/api/v1/police/officers/hh-other/osmand", headers=headers).json()[
        "identifier"
    ]
    with Session(services.engine) as session:
        device = session.get_one(Device, "hh-other")
        device.retired_at = NOW
        session.add(device)
        session.commit()
    assert get(other) == 400  # retired handheld
    assert (
        api.post("/api/v1/police/officers/cam-1/osmand", headers=headers).status_code
        == 404
    )
    assert len(stored(services)) == 1
    assert len(stored(services, "hh-other")) == 0
    assert metric(services, "unknown_id") == 8
    # The refusal never echoes the identifier it was given.
    r = api.get("/osmand", params={"id": "hh-phone", "lat": LAT, "lon": LON})
    assert "hh-phone" not in r.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("timestamp=1e300", "timestamp"),
        ("timestamp=99999999999999999", "timestamp"),
        ("timestamp=2026-13-01T00:00:00Z", "timestamp"),
        ("timestamp=9999-01-01T00:00:00Z", "timestamp"),
        ("lat=nan", "lat"),
        ("lon=inf", "lon"),
        ("lat=1e309", "lat"),
        ("lat=91", "lat"),
        ("lon=-181", "lon"),
        ("lat=north", "lat"),
        ("location=1,2,3", "location"),
        ("speed=fast", "speed"),
        ("accuracy=NaN", "accuracy"),
        ("batt=-inf", "batt"),
        ("valid=maybe", "valid"),
        ("alarm=%3Cscript%3E", "alarm"),
        ("cell=460,00", "cell"),
        ("wifi=nope,-70", "wifi"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(
    api: TestClient, ident: str, services: Services, query: str, field: str
) -> None:
    base = {"lat": str(LAT), "lon": str(LON)}
    key = query.split("=", 1)[0]
    rest = "&".join(f"{k}={v}" for k, v in base.items() if k != key)
    r = api.get(f"/osmand?id={ident}&{rest}&{query}")
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(f"{field}: expected")
    assert stored(services) == []
    assert events(services, "phone_report") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '{"location":{"coords":{"latitude":NaN,"longitude":1}},"device_id":"ID"}',
            "body",
        ),
        (
            '{"location":{"coords":{"latitude":1,"longitude":Infinity}},"device_id":"ID"}',
            "body",
        ),
        (
            '{"location":{"coords":{"latitude":true,"longitude":1}},"device_id":"ID"}',
            "latitude",
        ),
        (
            '{"location":{"coords":{"latitude":[1],"longitude":1}},"device_id":"ID"}',
            "location.coords.latitude",
        ),
        ('{"location":{"timestamp":1e300,"coords":{}},"device_id":"ID"}', "timestamp"),
        ('{"location":"here","device_id":"ID"}', "location"),
        ('{"location":{},"device_id":{"a":1}}', "device_id"),
        ("[1,2]", "body"),
        ('{"location":' + "[" * 5000 + "]" * 5000 + "}", "body"),
        ('{"location":' + json.dumps([{}] * 51) + ',"device_id":"ID"}', "location"),
        ("{not json", "body"),
    ],
)
def test_bad_json_is_refused_naming_the_field(
    api: TestClient, ident: str, services: Services, body: str, field: str
) -> None:
    r = api.post("/osmand", content=body.replace("ID", ident))
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith(f"{field}: expected")
    assert stored(services) == []


def test_the_body_is_capped(api: TestClient, ident: str, services: Services) -> None:
    big = f"id={ident}&lat={LAT}&lon={LON}&pad=" + "x" * MAX_BODY_BYTES
    r = api.post("/osmand", content=big)
    assert r.status_code == 413
    assert r.json()["detail"].startswith("body: expected at most")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        yield f"id={ident}&lat={LAT}&lon={LON}&pad=".encode()
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"x" * 1024

    assert api.post("/osmand", content=chunks()).status_code == 413
    many = "&".join(f"k{i}=1" for i in range(200))
    r = api.get(f"/osmand?id={ident}&lat={LAT}&lon={LON}&{many}")
    assert r.status_code == 400
    assert r.json()["detail"].startswith("parameters: expected")
    assert stored(services) == []


# -- the pure reader -------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1377177267", datetime(2013, 8, 22, 13, 14, 27, tzinfo=UTC)),
        ("1442068686579", datetime(2015, 9, 12, 14, 38, 6, 579000, tzinfo=UTC)),
        ("2016-01-27T18:55:47Z", datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)),
        ("2026-12-05T16:00:00+08:00", datetime(2026, 12, 5, 8, 0, tzinfo=UTC)),
        ("2014-06-04 09:10:11", datetime(2014, 6, 4, 9, 10, 11, tzinfo=UTC)),
        ("", None),
    ],
)
def test_parse_time_reads_traccars_forms(raw: str, expected: datetime | None) -> None:
    assert parse_time(raw) == expected


@given(
    query=st.text(max_size=300),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["", "application/json", "text/plain"]),
)
@settings(max_examples=300, deadline=None)
def test_the_reader_refuses_with_its_error_or_reads(
    query: str, body: bytes, content_type: str
) -> None:
    try:
        reports = read_request(query=query, body=body, content_type=content_type)
    except PhoneReportError as exc:
        assert ": expected " in str(exc)  # noqa: PT017 - any input, refused or read
        return
    for report in reports:
        try:
            verdict = judge(report, now=NOW, rules=PhoneRules())
        except PhoneReportError:
            continue
        if verdict.position is not None:
            assert -90 <= verdict.position.lat <= 90
            assert verdict.position.fix_ts <= NOW + timedelta(minutes=5)
