"""The desk, departments and Open311 through the real app (and a real client)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from georeport import GeoReport
from sqlmodel import Session
from support.api import login
from support.central import central_services
from support.kiosks import enrol_node

from central.app import create_app
from central.main import load_or_create_ca
from central.operators.auth import create_operator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "correct horse battery"
KEY = "open311-test-key"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    services = central_services(db_url, tmp_path, settings={"open311_api_keys": [KEY]})
    with Session(services.engine) as session:
        for user, role in (
            ("desk", "complaints"),
            ("staff", "department"),
            ("other", "department"),
        ):
            create_operator(
                session,
                username=user,
                password=PASSWORD,
                role=role,
                now=services.clock.now(),
            )
    with TestClient(create_app(services)) as c:
        desk = login(c, "desk", PASSWORD)
        c.put(
            "/api/v1/complaints/setup/departments/cgj",
            json={"name": "县城管局", "head": "chief", "members": ["staff"]},
            headers=desk,
        )
        c.put(
            "/api/v1/complaints/setup/services/noise",
            json={
                "name": "噪音扰民",
                "group": "投诉",
                "department": "cgj",
                "limit_days": 5,
            },
            headers=desk,
        )
        c.put(
            "/api/v1/complaints/setup/services/road",
            json={
                "name": "道路破损",
                "group": "举报",
                "department": "cgj",
                "limit_days": 10,
            },
            headers=desk,
        )
        yield c
    services.engine.dispose()


def test_desk_and_department_walk_a_complaint_to_its_rating(client: TestClient) -> None:
    desk, staff, other = (
        login(client, "desk", PASSWORD),
        login(client, "staff", PASSWORD),
        login(client, "other", PASSWORD),
    )
    filed = client.post(
        "/api/v1/complaints",
        json={
            "service_code": "noise",
            "description": "夜间施工噪音",
            "place": "建设路",
        },
        headers=desk,
    ).json()
    cid, code = filed["id"], filed["code"]
    assert filed["state"] == "pending"

    def act(who: dict[str, str], action: str, **body: str) -> Any:
        return client.post(f"/api/v1/complaints/{cid}/{action}", json=body, headers=who)

    # Not passed to staff's department yet: to them it does not exist.
    assert act(staff, "sign").status_code == 404
    assert act(desk, "accept").json()["due_at"]
    assert act(desk, "triage").json()["department"] == "cgj"
    assert act(desk, "assign").json()["state"] == "assigned"
    refused = act(other, "sign")  # another department's complaint
    assert refused.status_code == 404
    assert f"no complaint {cid}" in refused.json()["detail"]
    assert act(staff, "sign").json()["state"] == "signed"
    assert act(staff, "start").json()["state"] == "in_progress"
    assert act(staff, "extend").json()["extended"] is True
    assert "once" in act(staff, "extend").json()["detail"]
    assert act(staff, "reply").status_code == 409  # an answer needs its text
    assert act(staff, "reply", note="已责令施工方夜间停工").json()["state"] == "replied"
    svc = client.app.state.services  # type: ignore[attr-defined]
    svc.ca = load_or_create_ca(svc.settings, now=svc.clock.now())
    kiosk = enrol_node(svc.engine, svc.ca, device_id="kiosk-1")  # kiosks sign in
    path = f"/api/v1/kiosk/status/{code}"
    status = client.get(path, headers=kiosk.headers("GET", path)).json()
    assert status["reply"] == "已责令施工方夜间停工"
    assert status["can_rate"] is True
    assert act(desk, "visit", note="电话回访，群众满意").json()["state"] == "visited"
    assert act(desk, "close").json()["state"] == "closed"
    detail = client.get(f"/api/v1/complaints/{cid}", headers=desk).json()
    assert [s["action"] for s in detail["steps"]] == [
        "file",
        "accept",
        "triage",
        "assign",
        "sign",
        "start",
        "extend",
        "reply",
        "visit",
        "close",
    ]
    mine = client.get("/api/v1/complaints", headers=other).json()["items"]
    assert mine == []  # another department's staff see nothing of it
    rows = client.get(
        "/api/v1/complaints/reports/stats", params={"by": "department"}, headers=desk
    ).json()
    assert rows[0]["group"] == "cgj"
    assert rows[0]["解决率"] == 1.0
    csv = client.get(
        "/api/v1/complaints/reports/stats", params={"fmt": "csv"}, headers=desk
    )
    assert "响应率" in csv.content.decode("utf-8-sig")
    xlsx = client.get(
        "/api/v1/complaints/reports/stats", params={"fmt": "xlsx"}, headers=desk
    )
    assert xlsx.content[:2] == b"PK"
    audit = client.get(
        "/api/v1/audit", params={"limit": 100}, headers=login(client, "desk", PASSWORD)
    )
    assert audit.status_code in (200, 403)


def test_open311_json_xml_errors(client: TestClient) -> None:
    services = client.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} == {"noise", "road"}
    assert set(services[0]) >= {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    xml = ET.fromstring(client.get("/open311/v2/services.xml").content)
    assert xml.tag == "services"
    assert {e.findtext("service_code") for e in xml.findall("service")} == {
        "noise",
        "road",
    }
    assert client.get("/open311/v2/services/noise.json").json() == {
        "service_code": "noise",
        "attributes": [],
    }
    missing = client.get("/open311/v2/services/none.json")
    assert missing.status_code == 404
    assert missing.json()[0]["code"] == 404
    no_key = client.post(
        "/open311/v2/requests.json",
        data={
            "service_code": "noise",
            "description": "x",
            "lat": "29.1",
            "long": "113.1",
        },
    )
    assert no_key.status_code == 403
    bad = client.post(
        "/open311/v2/requests.xml", data={"api_key": KEY, "service_code": "noise"}
    )
    assert bad.status_code == 400
    err = ET.fromstring(bad.content)
    assert err.tag == "errors"
    assert err.findtext("error/code") == "400"
    made = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": KEY,
            "service_code": "road",
            "description": "路面塌陷",
            "lat": "29.145",
            "long": "113.118",
            "first_name": "三",
            "last_name": "张",
        },
    ).json()[0]
    rid, token = made["service_request_id"], made["token"]
    assert client.get(f"/open311/v2/tokens/{token}.json").json() == [
        {"service_request_id": rid, "token": token}
    ]
    one = client.get(f"/open311/v2/requests/{rid}.json").json()[0]
    assert one["status"] == "open"
    assert one["long"] is None  # filed with a name: shown anonymised
    assert (
        client.get("/open311/v2/requests.json", params={"status": "closed"}).json()
        == []
    )
    assert client.get("/open311/v2/requests/999.json").status_code == 404


def test_a_third_party_open311_client_reads_services_and_requests(
    client: TestClient,
    serve_app: Any,
) -> None:
    made = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": KEY,
            "service_code": "noise",
            "description": "广场舞音响过大",
            "address_string": "荣家湾广场",
        },
    ).json()[0]
    rid = made["service_request_id"]
    base = serve_app(client.app)
    for fmt in ("json", "xml"):
        geo = GeoReport(f"{base}/open311/v2", output_format=fmt)
        names = {s["service_code"] for s in geo.get_service_list()}
        assert names == {"noise", "road"}
        got = geo.get_service_request(rid)
        assert got["description"] == "广场舞音响过大"
        assert got["status"] == "open"
        assert got["address"] == "荣家湾广场"
    listed = GeoReport(f"{base}/open311/v2").get_service_requests()
    assert [r["service_request_id"] for r in listed] == [rid]
