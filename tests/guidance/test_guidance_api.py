"""Guidance through ingest and the API: hashed passages, travel times, incidents.

Camera and detector events go through the event sink as the ingest worker
hands them over; the service's minute is driven by a manual clock; the API
answers the traffic centre and the police, and nobody else.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.api import login, register
from support.central import central_services, sender

from central.app import create_app
from central.guidance.models import Passage
from central.guidance.service import GuidanceService, load_or_create_secret
from central.operators.auth import create_operator
from central.police.models import Alarm
from edge.clock import ManualClock
from edge.protocol import envelope

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from central.api.deps import Services

START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
ROLES = ("traffic", "police")
LINK = {
    "name": "巴陵大道 东行",
    "origin": "cam-a",
    "destination": "cam-b",
    "length_m": 1800,
    "free_flow_s": 130,
    "lat": 29.15,
    "lon": 113.12,
    "loops": [{"up": "det-1", "down": "det-2", "lanes": [1, 2]}],
}


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[Services, ManualClock]]:
    """Central's services with guidance, two cameras, two loops, two operators."""
    yield from _world(db_url, tmp_path)


@pytest.fixture
def world_sqlite(
    sqlite_url: str, tmp_path: Path
) -> Iterator[tuple[Services, ManualClock]]:
    """The same, on SQLite only (tests of permissions, not of the database)."""
    yield from _world(sqlite_url, tmp_path)


def _world(url: str, tmp_path: Path) -> Iterator[tuple[Services, ManualClock]]:
    clock = ManualClock(START)
    svc = central_services(url, tmp_path, clock=clock)
    svc.guidance = GuidanceService(
        clock=clock, secret=load_or_create_secret(tmp_path), sender=sender(svc)
    )
    register(svc.engine, "cam-a", "cam-b", kind="camera", now=START)
    register(svc.engine, "det-1", "det-2", kind="loop_detector", now=START)
    with Session(svc.engine) as s:
        for role in ROLES:
            create_operator(
                s, username=role, password=PASSWORD, role=role, now=clock.now()
            )
    yield svc, clock
    svc.engine.dispose()


def _feed(svc: Services, events: list[tuple[str, str, dict[str, Any]]]) -> None:
    sink = svc.sink()
    now = svc.clock.now()
    with Session(svc.engine) as session:
        stored = sink.accept(
            session,
            [envelope.make(d, t, body, now=now) for d, t, body in events],
            now,
        )
        session.commit()
    stored.deliver()


def _plate(
    camera: str, read: int, text: str, at: datetime
) -> tuple[str, str, dict[str, Any]]:
    body = {
        "read_id": f"r{read}",
        "text": text,
        "confidence": 0.95,
        "colour": "blue",
        "seen_at": at.isoformat(),
        "evidence": {},
    }
    return camera, "plate", body


def _minute(
    device: str, at: datetime, occ: dict[int, float]
) -> tuple[str, str, dict[str, Any]]:
    lanes = [
        {
            "lane": lane,
            "count": 5,
            "flow_vph": 300,
            "occupancy_pct": o,
            "speed_kmh": 40.0,
        }
        for lane, o in occ.items()
    ]
    return device, "detector", {"start": at.isoformat(), "seconds": 60, "lanes": lanes}


def _traffic(rng: random.Random) -> list[tuple[str, str, dict[str, Any]]]:
    """10 minutes of vehicles: ~150 s each, 10 % missed, a few misread, two stop."""
    reads: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(200):
        plate = f"湘F{i:05d}"
        entered = START + timedelta(seconds=rng.uniform(0, 600))
        took = rng.gauss(150, 10) + (1200 if i < 2 else 0)
        for camera, at in (
            ("cam-a", entered),
            ("cam-b", entered + timedelta(seconds=took)),
        ):
            if rng.random() < 0.1:
                continue
            text = plate if rng.random() > 0.05 else plate[:-1] + "X"
            reads.append(_plate(camera, i, text, at))
    return reads


def _check_od(api: TestClient, svc: Services, clock: ManualClock) -> None:
    """The hour's journeys once they are over, for planners and SUMO."""
    assert svc.guidance is not None
    clock.advance(78 * 60)  # 09:31
    svc.guidance.tick(svc.engine)
    traffic = login(api, "traffic", PASSWORD)  # the first token has expired
    hour = {"hour": START.isoformat()}
    matrix = api.get("/api/v1/guidance/od", params=hour, headers=traffic).json()
    [pair] = matrix["items"]
    assert (pair["origin"], pair["destination"]) == ("cam-a", "cam-b")
    assert 120 < pair["trips"] < 200
    xml = api.get(
        "/api/v1/guidance/od", params={**hour, "format": "sumo"}, headers=traffic
    )
    assert xml.headers["content-type"].startswith("application/xml")
    assert f'count="{pair["trips"]}"' in xml.text


def _loop_minutes() -> list[tuple[str, str, dict[str, Any]]]:
    """Four detector minutes of two stations; lane 2 empties from the third."""
    minutes = []
    for m in range(4):
        at = START + timedelta(minutes=m)
        blocked = m >= 2
        minutes.append(_minute("det-1", at, {1: 6.0, 2: 5.0}))
        minutes.append(
            _minute(
                "det-2",
                at,
                {1: 9.0 if blocked else 6.0, 2: 0.0 if blocked else 5.0},
            )
        )
    return minutes


def _check_sign(api: TestClient, who: dict[str, str]) -> None:
    """The incident wins the sign; a sign too small for it refuses it."""
    url = "/api/v1/guidance/links/bl-eb/message"
    big = api.get(url, params={"destination": "火车站"}, headers=who)
    assert big.status_code == 200, big.text
    assert big.json()["kind"] == "incident"
    assert [x["text"] for x in big.json()["lines"]] == [
        "前方巴陵大道 东行",
        "第2车道受阻",
        "减速慢行",
    ]
    small = api.get(
        url,
        params={"destination": "火车站", "width_px": 96, "height_px": 32},
        headers=who,
    )
    assert small.status_code == 422
    assert "at most 2 lines" in small.json()["detail"]


def test_travel_times_and_an_incident_end_to_end(
    world: tuple[Services, ManualClock],
) -> None:
    svc, clock = world
    assert svc.guidance is not None
    with TestClient(create_app(svc)) as api:
        traffic = login(api, "traffic", PASSWORD)
        police = login(api, "police", PASSWORD)
        r = api.put("/api/v1/guidance/links/bl-eb", json=LINK, headers=traffic)
        assert r.status_code == 200, r.text

        _feed(svc, _traffic(random.Random(3)))
        with Session(svc.engine) as s:
            stored = s.exec(select(Passage)).all()
        assert len(stored) > 300
        assert not any("湘F" in p.plate_hash or "湘F" in p.read_id for p in stored)

        _feed(svc, _loop_minutes())  # lane 2 empties between the stations
        clock.advance(4 * 60 + 10)  # the timer steps the loop pairs
        svc.guidance.tick(svc.engine)
        clock.advance(9 * 60 - 10)
        svc.guidance.tick(svc.engine)
        r = api.get("/api/v1/guidance/links/bl-eb/travel-times", headers=police)
        assert r.status_code == 200
        times = r.json()["items"]
        assert len(times) >= 6
        assert all(120 < t["seconds"] < 180 for t in times), times
        assert all(0 < t["confidence"] <= 1 for t in times)
        assert {"camera", "fused"} <= {t["source"] for t in times}  # loops: 4 min
        links = api.get("/api/v1/guidance/links", headers=police).json()["items"]
        assert links[0]["latest"]["minute"] == times[-1]["minute"]

        incidents = api.get("/api/v1/guidance/incidents", headers=police).json()[
            "items"
        ]
        assert len(incidents) == 1
        [found] = incidents
        assert (found["link"], found["lane"], found["source"]) == ("bl-eb", 2, "loops")
        assert found["evidence"]["occ_down"] == 0.0
        with Session(svc.engine) as s:
            alarm = s.get(Alarm, found["alarm"])
            assert alarm is not None
            assert alarm.kind == "incident"
            assert "第2车道" in alarm.detail["text"]

        _check_sign(api, police)

        decided = api.post(
            f"/api/v1/guidance/incidents/{found['id']}/decision",
            json={"decision": "confirmed", "note": "现场核实"},
            headers=police,
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["state"] == "confirmed"
        again = api.post(
            f"/api/v1/guidance/incidents/{found['id']}/decision",
            json={"decision": "dismissed"},
            headers=traffic,
        )
        assert again.status_code == 409

        _check_od(api, svc, clock)

        # the plate hashes go after their retention; the OD counts stay
        clock.advance(3 * 3600)
        svc.guidance.tick(svc.engine)
        with Session(svc.engine) as s:
            assert s.exec(select(Passage)).all() == []


def test_only_traffic_and_police_reach_guidance(
    world_sqlite: tuple[Services, ManualClock],
) -> None:
    svc, _ = world_sqlite
    with TestClient(create_app(svc)) as api:
        assert api.get("/api/v1/guidance/links").status_code == 401
        with Session(svc.engine) as s:
            for role in ("complaints", "technician"):
                create_operator(
                    s, username=role, password=PASSWORD, role=role, now=START
                )
        for role in ("complaints", "technician"):
            who = login(api, role, PASSWORD)
            assert api.get("/api/v1/guidance/links", headers=who).status_code == 403
            assert api.get("/api/v1/guidance/incidents", headers=who).status_code == 403
        police = login(api, "police", PASSWORD)
        r = api.put("/api/v1/guidance/links/x", json=LINK, headers=police)
        assert r.status_code == 403
        assert "guidance" in r.json()["detail"]
        traffic = login(api, "traffic", PASSWORD)
        bare = api.put(
            "/api/v1/guidance/links/x", json={"name": "无检测"}, headers=traffic
        )
        assert bare.status_code == 422
        assert "origin" in bare.json()["detail"]
        missing = api.post(
            "/api/v1/guidance/incidents/99/decision",
            json={"decision": "dismissed"},
            headers=traffic,
        )
        assert missing.status_code == 404
