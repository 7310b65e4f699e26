"""The suspect list keeps one entry per plate however it is written.

湘A·12345, 湘a12345 and " 湘A 12345" are one car: the second listing while
the first is in force updates it (category, note) instead of adding a twin,
by hand and by CSV import; an expired listing does not stand in the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.central import central_services

from central.app import create_app
from central.operators.auth import create_operator
from central.plates.service import PlateService
from edge import SystemClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "correct horse battery"


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    clock = SystemClock()
    svc = central_services(sqlite_url, tmp_path, clock=clock)
    svc.plates = PlateService(clock=clock, data_dir=tmp_path)
    engine = svc.engine
    with Session(engine) as s:
        create_operator(
            s, username="cmd", password=PASSWORD, role="police", now=clock.now()
        )
    with TestClient(create_app(svc)) as client:
        r = client.post(
            "/api/v1/auth/token", data={"username": "cmd", "password": PASSWORD}
        )
        client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield client
    engine.dispose()


def listed(api: TestClient) -> list[dict[str, object]]:
    items: list[dict[str, object]] = api.get("/api/v1/plates/suspects").json()["items"]
    return items


def test_one_entry_per_plate_however_written(api: TestClient) -> None:
    first = api.post(
        "/api/v1/plates/suspects", json={"plate": "湘A·12345", "category": "unpaid"}
    )
    assert first.status_code == 201
    again = api.post(
        "/api/v1/plates/suspects",
        json={"plate": "湘a12345", "category": "stolen", "note": "车主报案"},
    )
    assert again.json()["id"] == first.json()["id"]
    [entry] = listed(api)
    assert entry["plate"] == "湘A12345"
    assert entry["category"] == "stolen"
    assert entry["note"] == "车主报案"

    csv = "plate,category\n湘A 12345,wanted\n湘F·0B123,other\n湘f0b123,other\n"
    r = api.post(
        "/api/v1/plates/suspects/import",
        content=csv.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.json()["errors"] == []
    plates = sorted(str(e["plate"]) for e in listed(api))
    assert plates == ["湘A12345", "湘F0B123"]


def test_an_expired_listing_is_listed_anew(api: TestClient) -> None:
    old = api.post(
        "/api/v1/plates/suspects",
        json={
            "plate": "湘F11111",
            "category": "other",
            "valid_from": "2025-01-01T00:00:00Z",
            "valid_until": "2025-02-01T00:00:00Z",
        },
    ).json()
    new = api.post(
        "/api/v1/plates/suspects", json={"plate": "湘f·11111", "category": "stolen"}
    ).json()
    assert new["id"] != old["id"]
