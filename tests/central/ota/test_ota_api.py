"""The OTA API: releases, a rollout with its waves, pins, and the served repos."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient
from sqlmodel import Session
from support.central import central_services, sender

from central.app import create_app
from central.fleet import registry
from central.operators.auth import create_operator
from central.ota.release import build, publish
from central.ota.service import OtaService

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "correct horse battery"


def test_rollout_api(sqlite_url: str, tmp_path: Path) -> None:
    services = central_services(sqlite_url, tmp_path / "c")
    clock, engine = services.clock, services.engine
    service = OtaService(
        clock=clock, data_dir=services.settings.data_dir, sender=sender(services)
    )
    services.ota = service
    archive = build("kiosk", "2.0.0", min_from="1.0.0", out=tmp_path / "dist")
    name = publish(
        archive,
        repo_dir=service.image_dir,
        offline=tmp_path / "off",
        online=tmp_path / "on",
        now=datetime.now(UTC),
    )
    with Session(engine) as session:
        create_operator(
            session,
            username="tech",
            password=PASSWORD,
            role="technician",
            now=clock.now(),
        )
        for i in range(5):
            registry.register(
                session, device_id=f"kiosk-{i}", kind="kiosk", now=clock.now()
            )
    with TestClient(create_app(services)) as c:
        r = c.post(
            "/api/v1/auth/token", data={"username": "tech", "password": PASSWORD}
        )
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert [x["name"] for x in c.get("/api/v1/ota/releases", headers=h).json()] == [
            name
        ]
        assert (
            c.put(
                "/api/v1/ota/pins/kiosk-4", json={"note": "现场维修中"}, headers=h
            ).status_code
            == 200
        )
        made = c.post(
            "/api/v1/ota/rollouts",
            json={"release": name, "version": "2.0.0", "kind": "kiosk", "canary": 1},
            headers=h,
        )
        assert made.status_code == 201, made.text
        view = made.json()
        assert view["devices"] == 4  # the pinned one is left out
        assert [w["size"] for w in view["waves"]] == [1, 3]
        missing = c.post(
            "/api/v1/ota/rollouts",
            json={"release": "nope.tar", "version": "1", "kind": "kiosk"},
            headers=h,
        )
        assert missing.status_code == 404
        paused = c.post(f"/api/v1/ota/rollouts/{view['id']}/pause", headers=h).json()
        assert paused["state"] == "paused"
        assert c.delete("/api/v1/ota/pins/kiosk-4", headers=h).status_code == 200
        assert c.delete("/api/v1/ota/pins/kiosk-4", headers=h).status_code == 404
        # The image repository is served for nodes.
        root = c.get("/ota/image/metadata/1.root.json")
        assert root.status_code == 200
        assert root.json()["signed"]["_type"] == "root"
    engine.dispose()
