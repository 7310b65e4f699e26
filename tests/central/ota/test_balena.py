"""Rollouts delivered through balena-cloud, with balena-sdk on a replayed API.

There is no network here, so balena's API v7 is replayed with ``responses``
(requests never leave the process): the answers have the shapes balena
gives (OData ``{"d": [...]}``), and the devices' supervisors are played by
the test — a pinned device starts running its release, or reports reduced
functionality. Everything above the HTTP layer is the real SDK and ours.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest
import responses
from sqlmodel import Session, select

from central.db import make_engine, migrate
from central.errors import NotFoundError
from central.fleet import registry
from central.ota.balena import BalenaError, BalenaFleet, connect
from central.ota.models import RolloutNode, RolloutRow
from central.ota.rollout import Plan
from central.ota.service import OtaService
from edge.clock import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from requests import PreparedRequest

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
API = re.compile(r"https://api\.balena-cloud\.com/v7/.*")
GOOD, BAD = "f00dcafe" * 5, "deadbeef" * 5


class BalenaCloud:
    """balena's API for one fleet: its devices, its releases, the pins."""

    def __init__(self) -> None:
        self.releases: list[dict[str, Any]] = [
            {"id": 31, "commit": GOOD, "semver": "1.1.0", "status": "success"},
            {"id": 32, "commit": BAD, "semver": "1.2.0", "status": "success"},
        ]
        self.devices: dict[int, dict[str, Any]] = {
            i: {
                "id": i,
                "uuid": f"uuid{i}",
                "device_name": f"cam-{i}",
                "is_online": True,
                "overall_status": "operational",
                "is_running__release": [{"commit": "0" * 40}],
                "belongs_to__application": {"__id": 7},
            }
            for i in (1, 2, 3)
        }
        self.pins: list[tuple[int, int]] = []
        self.requests: list[str] = []
        self.down = False

    def answer(self, req: PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = unquote(str(req.url))
        self.requests.append(f"{req.method} {url}")
        if self.down:
            return 503, {}, "upstream unavailable"
        if "/application?" in url:
            found = "slug eq 'county/cameras'" in url
            return 200, {}, json.dumps({"d": [{"id": 7}] if found else []})
        if "/release?" in url:
            rows = [
                r
                for r in self.releases
                if f"'{r['commit']}'" in url or "commit eq" not in url
            ]
            return 200, {}, json.dumps({"d": rows})
        if req.method == "PATCH":
            (device,) = (int(i) for i in re.findall(r"id eq (\d+)", url))
            body = req.body if isinstance(req.body, (bytes, str)) else b"{}"
            release = json.loads(body)["is_pinned_on__release"]
            self.pins.append((device, release))
            return 200, {}, "OK"
        if "uuid eq" in url:
            uuid = re.search(r"uuid eq '(\w+)'", url)
            rows = [d for d in self.devices.values() if uuid and d["uuid"] == uuid[1]]
            return 200, {}, json.dumps({"d": rows})
        return 200, {}, json.dumps({"d": list(self.devices.values())})

    def supervisors(self, *, fail: str = "") -> None:
        """Each pinned device's supervisor pulls its release (or fails to)."""
        commits = {r["id"]: r["commit"] for r in self.releases}
        for device, release in self.pins:
            if commits[release] == fail:
                self.devices[device]["overall_status"] = "reduced-functionality"
            else:
                self.devices[device]["is_running__release"] = [
                    {"commit": commits[release]}
                ]


@pytest.fixture
def cloud() -> Iterator[BalenaCloud]:
    fake = BalenaCloud()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rs:
        for method in (responses.GET, responses.PATCH):
            rs.add_callback(method, API, callback=fake.answer)
        yield fake


def test_devices_releases_and_pins_through_the_sdk(cloud: BalenaCloud) -> None:
    fleet = BalenaFleet(connect("api-key"), "county/cameras")
    assert [r["version"] for r in fleet.releases()] == ["1.1.0", "1.2.0"]
    devices = fleet.devices()
    assert [d.name for d in devices] == ["cam-1", "cam-2", "cam-3"]
    assert devices[0].running == "0" * 40
    fleet.assign("cam-2", GOOD)
    assert cloud.pins == [(2, 31)]
    with pytest.raises(NotFoundError, match="no balena device named 'cam-9'"):
        fleet.assign("cam-9", GOOD)
    cloud.supervisors()
    assert fleet.outcomes({"cam-2": GOOD, "cam-1": GOOD}) == {
        "cam-2": ("committed", "")
    }
    cloud.down = True
    with pytest.raises(BalenaError, match="balena device list for county/cameras"):
        fleet.devices()


def run(service: OtaService, engine: Any, clock: ManualClock) -> None:
    clock.advance(6)
    service.tick(engine)


def test_a_rollout_through_balena_waits_for_its_devices_and_halts_on_failure(
    cloud: BalenaCloud, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    migrate(engine)
    clock = ManualClock(T0)
    service = OtaService(
        clock=clock,
        data_dir=tmp_path,
        balena=BalenaFleet(connect("api-key"), "county/cameras"),
    )
    with Session(engine) as session:
        for i in (1, 2, 3):
            registry.register(session, device_id=f"cam-{i}", kind="camera", now=T0)
        good = service.start(
            session,
            release=GOOD,
            version="1.1.0",
            kind="camera",
            by="ops",
            plan=Plan(canary=1, growth=2, min_sample=1),
        )
        rid = int(good.id or 0)
    run(service, engine, clock)  # the canary is pinned
    assert cloud.pins == [(1, 31)]
    run(service, engine, clock)  # balena has not updated it yet: nothing more
    assert cloud.pins == [(1, 31)]
    cloud.supervisors()
    run(service, engine, clock)  # cam-1 runs it: committed; the next wave is pinned
    assert cloud.pins == [(1, 31), (2, 31), (3, 31)]
    cloud.supervisors()
    run(service, engine, clock)
    run(service, engine, clock)
    with Session(engine) as session:
        nodes = session.exec(
            select(RolloutNode).where(RolloutNode.rollout_id == rid)
        ).all()
        assert {(n.device, n.state, n.fw_state) for n in nodes} == {
            (f"cam-{i}", "succeeded", "committed") for i in (1, 2, 3)
        }
        bad = service.start(
            session,
            release=BAD,
            version="1.2.0",
            kind="camera",
            by="ops",
            plan=Plan(canary=1, growth=2, min_sample=1),
        )
        bad_id = int(bad.id or 0)
    cloud.pins.clear()
    run(service, engine, clock)
    cloud.supervisors(fail=BAD)
    run(service, engine, clock)
    run(service, engine, clock)
    assert cloud.pins == [(1, 32)]  # the canary failed: nobody else was pinned
    with Session(engine) as session:
        row = session.get(RolloutRow, bad_id)
        assert row is not None
        view = service.view(session, row)
    assert view["state"] == "cancelled"
    assert view["touched"] == 1
    engine.dispose()
