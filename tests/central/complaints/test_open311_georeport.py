"""Open311 GeoReport v2 as its clients use it, and as an attacker would.

Requests are written by hand from the GeoReport v2 and Service Discovery
specifications (wiki.open311.org) and from what FixMyStreet's Open311 sender
posts (perllib/Open311.pm), and read back by a third-party client, the
``georeport`` package, over a real HTTP server. The database is real SQLite
(and PostgreSQL where it is reachable); time is a manual clock.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import requests
from fastapi.testclient import TestClient
from georeport import GeoReport
from PIL import Image
from sqlmodel import Session, select
from support.central import central_services

from central.api.deps import Services, complaints
from central.app import create_app
from central.complaints.models import Complaint, Department, ServiceType
from central.complaints.service import Filing
from edge.clock import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KEY = "open311-test-key"
JURISDICTION = "yyx.gov.cn"
NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 in 岳阳县
BASE = "/open311/v2"


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    built = central_services(
        db_url,
        tmp_path,
        clock=ManualClock(NOW),
        settings={"open311_api_keys": [KEY]},
    )
    with Session(built.engine) as session:
        session.add(Department(code="cgj", name="县城管局"))
        session.add(ServiceType(code="noise", name="噪音扰民", department="cgj"))
        session.add(ServiceType(code="road", name="道路破损", group="举报"))
        session.commit()
    yield built
    built.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c


def file_directly(services: Services, filing: Filing, at: datetime) -> int:
    """A complaint as the kiosk, the desk or an earlier release filed it."""
    with Session(services.engine) as session:
        c = complaints(services).file(session, filing, at=at)
        session.commit()
        return int(c.id or 0)


def post(client: TestClient, fmt: str = "json", **fields: str) -> Any:
    return client.post(f"{BASE}/requests.{fmt}", data={"api_key": KEY, **fields})


def errors_json(r: Any, code: int) -> str:
    """The spec's JSON error list: one error with ``code``; its description."""
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, list)
    assert len(body) == 1
    assert set(body[0]) == {"code", "description"}
    assert body[0]["code"] == code
    return str(body[0]["description"])


def errors_xml(r: Any, code: int) -> str:
    """The spec's XML error list: ``<errors><error><code>``; its description."""
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("text/xml")
    assert r.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = ET.fromstring(r.content)
    assert root.tag == "errors"
    assert [e.tag for e in root] == ["error"]
    assert root.findtext("error/code") == str(code)
    return root.findtext("error/description") or ""


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


# -- discovery ---------------------------------------------------------------------
def test_discovery_in_both_formats(client: TestClient) -> None:
    doc = client.get(f"{BASE}/discovery.json").json()
    assert set(doc) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["type"] == "production"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert datetime.fromisoformat(endpoint["changeset"]).utcoffset() == timedelta(
        hours=8
    )
    # The discovery example's XML layout: endpoints/endpoint/formats/format.
    root = ET.fromstring(client.get(f"{BASE}/discovery.xml").content)
    assert root.tag == "discovery"
    assert (
        root.findtext("endpoints/endpoint/specification") == endpoint["specification"]
    )
    assert {f.text for f in root.findall("endpoints/endpoint/formats/format")} == {
        "text/xml",
        "application/json",
    }
    assert root.findtext("changeset") == doc["changeset"]


# -- posting as the spec's example and as FixMyStreet do -----------------------------
def test_the_spec_example_post_and_its_answer(
    client: TestClient, services: Services
) -> None:
    # Every field of GeoReport v2's "POST Service Request", as in its example
    # (the sinkhole, attribute[WHISPAWN]), form-encoded, with this
    # county's jurisdiction and a request type of ours.
    body = (
        f"api_key={KEY}&jurisdiction_id={JURISDICTION}&service_code=road"
        "&lat=37.76524078&long=-122.4212043"
        "&address_string=1234+5th+street&email=smit333%40sfgov.edu"
        "&device_id=tt222111&account_id=123456&first_name=john&last_name=smith"
        "&phone=111111111&description=A+large+sinkhole+is+destroying+the+street"
        "&media_url=http%3A%2F%2Fsomeserver.com%2Fsomepicture.jpg"
        "&attribute%5BWHISPAWN%5D=123456&attribute%5BWHISDORN%5D=COISL001"
    )
    r = client.post(
        f"{BASE}/requests.xml",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 201, r.text
    root = ET.fromstring(r.content)
    assert root.tag == "service_requests"
    rid = root.findtext("request/service_request_id")
    assert rid
    assert (root.findtext("request/service_notice") or "").startswith("查询码 ")
    token = root.findtext("request/token")
    # FixMyStreet's get_service_request_id_from_token reads tokens/{token}.xml.
    got = ET.fromstring(client.get(f"{BASE}/tokens/{token}.xml").content)
    assert got.findtext("request/service_request_id") == rid
    with Session(services.engine) as session:
        stored = session.get(Complaint, int(rid))
        assert stored is not None
        assert stored.description == "A large sinkhole is destroying the street"
        assert stored.media_url == "http://someserver.com/somepicture.jpg"
        assert (stored.name, stored.phone) == ("smithjohn", "111111111")
        assert stored.source == "open311"
        assert stored.public


@pytest.mark.parametrize(
    "location",
    [
        {"address_id": "#NOTPINPOINTED#"},  # FixMyStreet, a report not on a map
        {"address_string": "荣家湾镇东方路"},
        {"lat": "29.145", "long": "113.118"},
    ],
)
def test_any_one_location_suffices(
    client: TestClient, location: dict[str, str]
) -> None:
    made = post(client, service_code="noise", description="夜间施工", **location)
    assert made.status_code == 201, made.text
    rid = made.json()[0]["service_request_id"]
    one = client.get(f"{BASE}/requests/{rid}.json").json()[0]
    assert one["address_id"] == location.get("address_id", "")
    assert one["address"] == location.get("address_string", "")
    if "lat" in location:
        assert (one["lat"], one["long"]) == (29.145, 113.118)


def test_no_location_or_half_a_point_is_refused(client: TestClient) -> None:
    assert "location" in errors_json(
        post(client, service_code="noise", description="x"), 400
    )
    assert "lat & long" in errors_xml(
        post(client, "xml", service_code="noise", lat="29.1"), 400
    )


def test_optional_fields_are_optional(client: TestClient) -> None:
    made = post(client, service_code="road", address_string="G107 北向")
    assert made.status_code == 201, made.text
    assert "service_code" in errors_json(post(client, address_string="x"), 400)


def test_description_of_4000_characters_kept_whole(client: TestClient) -> None:
    text = "路" * 4000
    rid = post(client, service_code="road", address_string="x", description=text)
    one = client.get(f"{BASE}/requests/{rid.json()[0]['service_request_id']}.json")
    assert one.json()[0]["description"] == text
    too_long = post(
        client, service_code="road", address_string="x", description=text + "!"
    )
    assert "description: expected at most 4000 characters, got 4001" in errors_json(
        too_long, 400
    )


def test_media_url_comes_back(client: TestClient) -> None:
    rid = post(
        client,
        service_code="road",
        address_string="x",
        media_url="https://fms.example/photo/1.jpeg",
    ).json()[0]["service_request_id"]
    one = client.get(f"{BASE}/requests/{rid}.json").json()[0]
    assert one["media_url"] == "https://fms.example/photo/1.jpeg"
    assert "media_url" in errors_json(
        post(client, service_code="road", address_string="x", media_url="javascript:1"),
        400,
    )


def test_an_uploaded_photo_is_stored_and_served(
    client: TestClient, services: Services, serve_app: Any
) -> None:
    base = serve_app(client.app)
    image = png()
    r = requests.post(
        f"{base}{BASE}/requests.json",
        data={"api_key": KEY, "service_code": "road", "address_string": "岳阳大道"},
        files={"media": ("pothole.png", image, "image/png")},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    url = requests.get(f"{base}{BASE}/requests/{rid}.json", timeout=10).json()[0][
        "media_url"
    ]
    assert url.startswith(f"{base}{BASE}/media/")
    assert url.endswith(".png")
    photo = requests.get(url, timeout=10)
    assert photo.status_code == 200
    assert photo.content == image
    assert photo.headers["content-type"] == "image/png"
    assert photo.headers["x-content-type-options"] == "nosniff"
    stored = list((services.settings.data_dir / "open311" / "media").iterdir())
    assert [p.read_bytes() for p in stored] == [image]


def test_an_upload_that_is_not_a_bounded_image_is_refused(
    client: TestClient, services: Services
) -> None:
    fields = {"api_key": KEY, "service_code": "road", "address_string": "x"}
    html = client.post(
        f"{BASE}/requests.xml",
        data=fields,
        files={"media": ("x.png", b"<html><script>alert(1)</script>", "image/png")},
    )
    assert "media: expected a JPEG, PNG, GIF or WebP image" in errors_xml(html, 400)
    huge = client.post(
        f"{BASE}/requests.json",
        data=fields,
        files={"media": ("big.png", png() + b"\0" * (6 * 1024 * 1024), "image/png")},
    )
    assert huge.status_code in {400, 413}
    errors_json(huge, huge.status_code)
    assert not (services.settings.data_dir / "open311" / "media").exists()
    with Session(services.engine) as session:
        assert session.exec(select(Complaint)).all() == []
    for name in ("../central.sqlite3", "x.png", "0" * 32 + ".html"):
        errors_json(client.get(f"{BASE}/media/{name}"), 404)


# -- jurisdiction, formats and the spec's error list on every route -------------------
def test_the_county_jurisdiction_is_accepted_and_others_refused(
    client: TestClient,
) -> None:
    ours = {"jurisdiction_id": JURISDICTION}
    assert client.get(f"{BASE}/services.json", params=ours).status_code == 200
    made = post(client, service_code="road", address_string="x", **ours)
    assert made.status_code == 201
    theirs = {"jurisdiction_id": "sfgov.org"}
    rid = made.json()[0]["service_request_id"]
    for path in (
        "services",
        "services/road",
        "requests",
        f"requests/{rid}",
        f"tokens/{made.json()[0]['token']}",
    ):
        assert "jurisdiction_id: expected yyx.gov.cn, got 'sfgov.org'" in errors_json(
            client.get(f"{BASE}/{path}.json", params=theirs), 404
        )
        errors_xml(client.get(f"{BASE}/{path}.xml", params=theirs), 404)
    errors_xml(
        post(client, "xml", service_code="road", address_string="x", **theirs), 404
    )


def test_every_refusal_is_the_spec_error_list_never_a_422(client: TestClient) -> None:
    errors_json(client.get(f"{BASE}/services.csv"), 400)
    errors_json(
        client.get(f"{BASE}/requests.json", params={"start_date": "yesterday"}), 400
    )
    errors_xml(
        client.get(f"{BASE}/requests.xml", params={"end_date": "2026-13-45"}), 400
    )
    errors_xml(client.get(f"{BASE}/requests.xml", params={"status": "pending"}), 400)
    errors_json(
        client.get(f"{BASE}/requests.json", params={"service_request_id": "a"}), 400
    )
    errors_json(client.get(f"{BASE}/services/none.json"), 404)
    errors_xml(client.get(f"{BASE}/services/none.xml"), 404)
    errors_json(client.get(f"{BASE}/requests/none.json"), 404)
    errors_xml(client.get(f"{BASE}/tokens/none.xml"), 404)
    errors_xml(client.get(f"{BASE}/nothing/here.xml"), 404)
    errors_json(client.get(f"{BASE}/requests"), 404)
    errors_json(client.post(f"{BASE}/requests.json", data={"api_key": "guess"}), 403)
    errors_xml(client.post(f"{BASE}/requests.xml"), 403)
    broken = client.post(
        f"{BASE}/requests.json",
        content=b"--x\r\nno headers here",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code in {400, 403}
    errors_json(broken, broken.status_code)


# -- dates with offsets in and out --------------------------------------------------
def test_dates_with_offsets_in_and_out(client: TestClient, services: Services) -> None:
    # 2026-12-04 23:30 UTC is 07:30 on the 5th in 岳阳县.
    early = file_directly(
        services,
        Filing(
            service_code="noise",
            description="早",
            place="a",
            source="open311",
            public=True,
        ),
        datetime(2026, 12, 4, 23, 30, tzinfo=UTC),
    )
    late = file_directly(
        services,
        Filing(
            service_code="noise",
            description="晚",
            place="b",
            source="open311",
            public=True,
        ),
        datetime(2026, 12, 5, 1, 0, tzinfo=UTC),
    )
    one = client.get(f"{BASE}/requests/{early}.json").json()[0]
    assert one["requested_datetime"] == "2026-12-05T07:30:00+08:00"

    def ids(**params: str) -> list[int]:
        r = client.get(f"{BASE}/requests.json", params=params)
        assert r.status_code == 200, r.text
        return [int(x["service_request_id"]) for x in r.json()]

    # 08:00+08:00 is 00:00Z: only the later one; read as UTC it would take both.
    since_eight = {"start_date": "2026-12-05T08:00:00+08:00"}
    assert ids(**since_eight) == [late]
    assert ids(start_date="2026-12-05T00:00:00Z") == [late]
    assert ids(start_date="2026-12-05T08:00:00") == [late]  # no offset: county time
    assert ids(end_date="2026-12-05T07:45:00+08:00", start_date="2026-12-01") == [early]
    # A client that did not encode "+" sends a space; it still means +08:00.
    raw = client.get(f"{BASE}/requests.json?start_date=2026-12-05T08:00:00+08:00")
    assert [int(x["service_request_id"]) for x in raw.json()] == [late]
    # The spec's own pair of instants (1994-11-05) are the same time.
    same = {
        "start_date": "1994-11-05T08:15:30-05:00",
        "end_date": "1994-11-05T13:15:30Z",
    }
    assert ids(**same) == []
    assert "90 days" in errors_json(
        client.get(
            f"{BASE}/requests.json",
            params={
                "start_date": "2026-01-01T00:00:00Z",
                "end_date": "2026-12-01T00:00:00Z",
            },
        ),
        400,
    )
    assert ids() == [late, early]  # by default the last 90 days
    assert isinstance(services.clock, ManualClock)
    services.clock.advance(91 * 86400)
    assert ids() == []


# -- privacy: what the public sees --------------------------------------------------
def test_walking_ids_reveals_no_private_complaint(
    client: TestClient, services: Services
) -> None:
    kiosk = file_directly(
        services,
        Filing(
            service_code="noise",
            description="邻居王五家每晚打麻将到三点",
            place="荣家湾镇幸福小区3栋",
            real_name=True,
            name="李四",
            phone="13800000000",
            device="kiosk-01",
        ),
        NOW - timedelta(hours=1),
    )
    desk = file_directly(
        services,
        Filing(service_code="road", description="匿名举报", place="x", source="desk"),
        NOW - timedelta(hours=1),
    )
    with Session(services.engine) as session:
        row = session.get(Complaint, kiosk)
        assert row is not None
        row.reply = "已联系李四先生"
        session.add(row)
        session.commit()
    named = post(
        client,
        service_code="noise",
        description="楼下KTV噪音，我叫赵六",
        address_string="建设路12号",
        lat="29.14",
        long="113.11",
        first_name="六",
        last_name="赵",
        phone="13911112222",
        email="z6@example.cn",
        media_url="https://example.cn/a.jpg",
    ).json()[0]["service_request_id"]
    secrets = ("王五", "李四", "13800000000", "幸福小区", "匿名举报", "已联系")
    named_secrets = ("赵", "13911112222", "z6@example.cn", "KTV", "建设路", "a.jpg")
    missing = client.get(f"{BASE}/requests/999999.json")
    for fmt in ("json", "xml"):
        seen = [client.get(f"{BASE}/requests/{i}.{fmt}") for i in range(1, 10)]
        seen.append(
            client.get(
                f"{BASE}/requests.{fmt}",
                params={"service_request_id": ",".join(map(str, range(1, 10)))},
            )
        )
        seen.append(client.get(f"{BASE}/requests.{fmt}"))
        text = "\n".join(r.text for r in seen)
        for secret in secrets + named_secrets:
            assert secret not in text, secret
    for private in (kiosk, desk):
        r = client.get(f"{BASE}/requests/{private}.json")
        assert r.status_code == 404
        assert r.json()[0]["description"] == missing.json()[0]["description"].replace(
            "999999", str(private)
        )
        token = _token(services, private)
        errors_json(client.get(f"{BASE}/tokens/{token}.json"), 404)
    shown = client.get(f"{BASE}/requests/{named}.json").json()[0]
    assert shown["status"] == "open"
    assert shown["service_code"] == "noise"
    assert shown["agency_responsible"] == "县城管局"
    assert (shown["description"], shown["address"], shown["media_url"]) == ("", "", "")
    assert (shown["lat"], shown["long"]) == (None, None)
    assert [
        r["service_request_id"] for r in client.get(f"{BASE}/requests.json").json()
    ] == [named]


def _token(services: Services, complaint_id: int) -> str:
    with Session(services.engine) as session:
        row = session.get(Complaint, complaint_id)
        assert row is not None
        return row.token


def test_an_anonymous_open311_request_shows_its_text_and_reply(
    client: TestClient, services: Services
) -> None:
    rid = post(
        client, service_code="road", description="井盖缺失", lat="29.1", long="113.1"
    ).json()[0]["service_request_id"]
    with Session(services.engine) as session:
        row = session.get(Complaint, int(rid))
        assert row is not None
        row.reply, row.state = "已修复", "closed"
        session.add(row)
        session.commit()
    shown = client.get(f"{BASE}/requests/{rid}.json").json()[0]
    assert (shown["description"], shown["status"], shown["status_notes"]) == (
        "井盖缺失",
        "closed",
        "已修复",
    )
    closed = client.get(f"{BASE}/requests.json", params={"status": "closed"}).json()
    assert [r["service_request_id"] for r in closed] == [rid]
    assert client.get(f"{BASE}/requests.json", params={"status": "open"}).json() == []


# -- attacks: huge ids, nan, control characters --------------------------------------
@pytest.mark.parametrize(
    "rid", ["99999999999999999999", "2147483648", "0", "-1", "1e9", "１２"]
)
def test_huge_or_odd_ids_are_not_found(client: TestClient, rid: str) -> None:
    errors_json(client.get(f"{BASE}/requests/{rid}.json"), 404)
    errors_xml(client.get(f"{BASE}/requests/{rid}.xml"), 404)
    errors_json(
        client.get(f"{BASE}/requests.json", params={"service_request_id": rid}), 400
    )


def test_too_many_ids_are_refused(client: TestClient) -> None:
    ids = ",".join(str(i) for i in range(1, 1002))
    assert "at most 1000" in errors_json(
        client.get(f"{BASE}/requests.json", params={"service_request_id": ids}), 400
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lat", "nan"),
        ("long", "NaN"),
        ("lat", "inf"),
        ("long", "-Infinity"),
        ("lat", "91"),
        ("long", "180.5"),
        ("lat", "北纬"),
    ],
)
def test_coordinates_must_be_finite_and_in_range(
    client: TestClient, field: str, value: str
) -> None:
    point = {"lat": "29.1", "long": "113.1", field: value}
    said = errors_json(post(client, service_code="road", **point), 400)
    assert said.startswith(f"{field}: expected")
    assert value in said


def test_a_stored_bad_row_cannot_break_the_list(
    client: TestClient, services: Services
) -> None:
    rid = file_directly(
        services,
        Filing(
            service_code="road",
            description="坏\x01数\x1b据\x0b",  # PostgreSQL refuses NUL itself
            place="\x07地点",
            lat=math.nan,
            lon=math.inf,
            source="open311",
            public=True,
        ),
        NOW - timedelta(minutes=5),
    )
    listed = client.get(f"{BASE}/requests.json")
    assert listed.status_code == 200, listed.text
    (row,) = listed.json()
    assert (row["lat"], row["long"]) == (None, None)
    assert row["description"] == "坏数据"
    xml = client.get(f"{BASE}/requests.xml")
    root = ET.fromstring(xml.content)  # well-formed
    assert root.findtext("request/address") == "地点"
    assert client.get(f"{BASE}/requests/{rid}.xml").status_code == 200


def test_control_characters_are_stripped_on_the_way_in(
    client: TestClient, services: Services
) -> None:
    rid = post(
        client,
        "xml",
        service_code="road",
        description="路灯\x00不亮\x1b[31m\r\n第二行\ttab",
        address_string="巴陵\x08路",
    )
    assert rid.status_code == 201, rid.text
    rid_text = ET.fromstring(rid.content).findtext("request/service_request_id")
    with Session(services.engine) as session:
        row = session.get(Complaint, int(rid_text or 0))
        assert row is not None
        assert row.description == "路灯不亮[31m\r\n第二行\ttab"
        assert row.place == "巴陵路"
    root = ET.fromstring(client.get(f"{BASE}/requests.xml").content)
    assert root.findtext("request/address") == "巴陵路"


# -- a third-party client -----------------------------------------------------------
def test_the_georeport_client_reads_what_was_filed(
    client: TestClient, serve_app: Any
) -> None:
    rid = post(
        client,
        service_code="noise",
        description="广场舞音响过大",
        address_string="荣家湾广场",
        media_url="https://example.cn/p.jpg",
    ).json()[0]["service_request_id"]
    base = serve_app(client.app)
    for fmt in ("json", "xml"):
        geo = GeoReport(f"{base}{BASE}", jurisdiction=JURISDICTION, output_format=fmt)
        assert {s["service_code"] for s in geo.get_service_list()} == {"noise", "road"}
        got = geo.get_service_request(rid)
        assert got["description"] == "广场舞音响过大"
        assert got["media_url"] == "https://example.cn/p.jpg"
        assert got["requested_datetime"] == "2026-12-05T10:00:00+08:00"
        listed = geo.get_service_requests(
            start_date="2026-12-05T09:00:00+08:00",
            end_date="2026-12-05T11:00:00+08:00",
            status="open",
        )
        one = listed if fmt == "xml" else listed[0]  # xmltodict: one child, a dict
        assert isinstance(one, dict)
        assert one["service_request_id"] == rid
        if fmt == "json":  # xmltodict cannot read an empty list: the client's limit
            later = geo.get_service_requests(start_date="2026-12-05T10:00:01+08:00")
            assert later == []
        wrong = GeoReport(f"{base}{BASE}", jurisdiction="sfgov.org", output_format=fmt)
        with pytest.raises(requests.HTTPError, match="404"):
            wrong.get_service_list()
