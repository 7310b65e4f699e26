"""The device page's one read: device, certificates, OTA history, events.

A technician sees everything, the newest event first and a 24-slot hourly
count; the complaint desk, which may read kiosks but not their events, gets
the rest with ``events`` and ``hourly`` left out; a camera is not theirs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.central import central_services

from central.app import create_app
from central.fleet import registry
from central.models import Certificate, Event
from central.operators.auth import create_operator
from central.ota.models import RolloutNode, RolloutRow
from edge import SystemClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "correct horse battery"


@pytest.fixture
def app(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    clock = SystemClock()
    svc = central_services(sqlite_url, tmp_path, clock=clock)
    engine = svc.engine
    now = clock.now()
    with Session(engine) as s:
        create_operator(
            s, username="tech", password=PASSWORD, role="technician", now=now
        )
        create_operator(
            s, username="desk", password=PASSWORD, role="complaints", now=now
        )
        registry.register(s, device_id="kiosk-1", kind="kiosk", site="rjw", now=now)
        registry.register(s, device_id="cam-1", kind="camera", site="rjw", now=now)
        s.add(
            Certificate(
                serial="abc1",
                device_id="kiosk-1",
                issued_at=now,
                not_after=now + timedelta(days=90),
            )
        )
        row = RolloutRow(
            release="baling-kiosk-0.2.0.tar",
            version="0.2.0",
            kind="kiosk",
            state="running",
            created_by="tech",
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        s.add(
            RolloutNode(
                rollout_id=int(row.id or 0),
                device="kiosk-1",
                state="assigned",
                fw_state="deferred",
                reason="a citizen is using the kiosk",
            )
        )
        for n, hours in enumerate((0, 0, 3, 30)):
            at = now - timedelta(hours=hours, minutes=n)
            s.add(
                Event(
                    id=f"00000000-0000-7000-8000-0000000000{n:02d}",
                    device="kiosk-1",
                    type="complaint",
                    ts=at,
                    received_at=at,
                    body={"n": n},
                )
            )
        s.commit()
    with TestClient(create_app(svc)) as client:
        yield client
    engine.dispose()


def _as(client: TestClient, user: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": user, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_technician_sees_the_whole_device(app: TestClient) -> None:
    r = app.get("/api/v1/devices/kiosk-1/overview", headers=_as(app, "tech"))
    assert r.status_code == 200
    o = r.json()
    assert o["device"]["id"] == "kiosk-1"
    assert [c["serial"] for c in o["certificates"]] == ["abc1"]
    [ota] = o["ota"]
    assert ota["release"] == "baling-kiosk-0.2.0.tar"
    assert ota["fw_state"] == "deferred"
    assert ota["reason"] == "a citizen is using the kiosk"
    assert [e["body"]["n"] for e in o["events"]] == [3, 2, 1, 0]  # newest first
    counts = o["hourly"]["counts"]
    assert len(counts) == 24
    assert sum(counts) == 3  # the one 30 hours old is outside the day
    assert counts[-1] == 2


def test_events_only_for_who_may_read_them(app: TestClient) -> None:
    desk = _as(app, "desk")
    o = app.get("/api/v1/devices/kiosk-1/overview", headers=desk).json()
    assert o["device"]["id"] == "kiosk-1"
    assert o["events"] is None
    assert o["hourly"] is None
    assert app.get("/api/v1/devices/cam-1/overview", headers=desk).status_code == 403
    assert app.get("/api/v1/devices/nope/overview", headers=desk).status_code == 404


def test_a_detector_shows_its_loops_by_hour_and_its_faults(app: TestClient) -> None:
    tech = _as(app, "tech")
    assert app.post(
        "/api/v1/devices",
        json={"id": "loop-1", "kind": "loop_detector", "site": "rjw"},
        headers=tech,
    ).status_code in (200, 201)
    svc = app.app.state.services  # type: ignore[attr-defined]
    now = svc.clock.now()
    with Session(svc.engine) as s:
        for n, (ago_min, cars) in enumerate([(125, 10), (65, 20), (64, 22), (1, 5)]):
            at = now - timedelta(minutes=ago_min)
            lanes = [
                {
                    "lane": 1,
                    "count": cars,
                    "flow_vph": cars * 60,
                    "occupancy_pct": 10.0,
                },
                {"lane": 2, "count": 1, "flow_vph": 60, "occupancy_pct": 30.0},
            ]
            s.add(
                Event(
                    id=f"10000000-0000-7000-8000-0000000000{n:02d}",
                    device="loop-1",
                    type="detector",
                    ts=at,
                    received_at=at,
                    body={"start": at.isoformat(), "seconds": 60, "lanes": lanes},
                )
            )
        s.add(
            Event(
                id="10000000-0000-7000-8000-000000000099",
                device="loop-1",
                type="fault",
                ts=now,
                received_at=now,
                body={"code": "stuck_on", "active": True, "detail": "lane 2"},
            )
        )
        s.commit()
    d = app.get("/api/v1/devices/loop-1/overview", headers=tech).json()["detector"]
    assert [lane["count"] for lane in d["latest"]] == [5, 1]
    loop1 = next(lane for lane in d["lanes"] if lane["lane"] == 1)
    assert sum(loop1["counts"]) == 57
    assert loop1["counts"][-1] == 5
    assert loop1["counts"][-2] == 42  # the two minutes an hour ago, summed
    assert loop1["occupancy_pct"][-2] == 10.0
    assert d["faults"] == [
        {"code": "stuck_on", "detail": "lane 2", "active": True, "at": now.isoformat()}
    ]
    kiosk = app.get("/api/v1/devices/kiosk-1/overview", headers=tech).json()
    assert "detector" not in kiosk
