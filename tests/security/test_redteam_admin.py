"""Red-team findings on district-scoped operators reaching county-wide things.

Finding 5: a district's admin (``admin`` with scope ``["north"]``) created a
county admin, widened its own scope to ``*`` and read the whole audit log.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from districtworld import build
from support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from authworld import World


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(sqlite_url, tmp_path)
    with w.client:
        yield w
    w.services.engine.dispose()


def test_a_district_admin_cannot_manage_operators_or_read_the_audit(
    world: World,
) -> None:
    north = world.login("admin-n")
    assert world.client.get("/api/v1/devices/cab-n", headers=north).status_code == 200
    assert world.client.get("/api/v1/devices/cab-s", headers=north).status_code == 403
    tries = [
        world.client.post(
            "/api/v1/operators",
            json={
                "username": "evil",
                "role": "admin",
                "scope": ["*"],
                "password": "county wide pass 99",
            },
            headers=north,
        ),
        world.client.patch(
            "/api/v1/operators/admin-n", json={"scope": ["*"]}, headers=north
        ),
        world.client.patch(
            "/api/v1/operators/root", json={"active": False}, headers=north
        ),
        world.client.get("/api/v1/operators", headers=north),
        world.client.get("/api/v1/audit", headers=north),
        world.client.get("/api/v1/audit/verify", headers=north),
    ]
    for answer in tries:
        assert answer.status_code == 403, answer.text
    again = world.login("admin-n")
    assert world.client.get("/api/v1/devices/cab-s", headers=again).status_code == 403
    # the county admin still does all of it
    root = world.login("root")
    assert world.client.get("/api/v1/operators", headers=root).status_code == 200
    assert world.client.get("/api/v1/audit", headers=root).status_code == 200
    made = world.client.post(
        "/api/v1/operators",
        json={"username": "admin-s", "role": "admin", "scope": ["south"]},
        headers=root,
    )
    assert made.status_code == 201, made.text


@pytest.mark.parametrize("extra", [{"min_sample": 10_000}, {"min_sample": 11}])
def test_a_rollout_sample_too_large_to_ever_halt_needs_an_admin(
    world: World, extra: dict[str, int]
) -> None:
    # Finding 9: min_sample=10000 made a failing rollout never pause or cancel.
    rollout = {
        "release": "baling-camera-9.tar",
        "version": "9",
        "kind": "camera",
        "site": "north",
    }
    reckless = world.client.post(
        "/api/v1/ota/rollouts", json={**rollout, **extra}, headers=world.login("tech-n")
    )
    assert reckless.status_code == 403, reckless.text
    assert "ota/unsafe" in reckless.json()["detail"]
    sane = world.client.post(
        "/api/v1/ota/rollouts",
        json={**rollout, "min_sample": 10},
        headers=world.login("tech-n"),
    )
    assert sane.status_code == 503  # past the gate: this app has no OTA service


def test_the_live_stream_shows_a_rollout_only_in_its_district(world: World) -> None:
    # Finding 15: rollout items carried no site and went to every OTA reader.
    def rollout(rid: int, site: str) -> dict[str, Any]:
        return {"type": "rollout", "id": rid, "kind": "camera", "site": site}

    def publish() -> None:
        wait_until(
            lambda: world.services.broadcaster.subscribers > 0,
            what="the stream to listen",
        )
        for item in (rollout(1, "south"), rollout(2, ""), rollout(3, "north")):
            world.services.broadcaster.publish(item)
        world.services.broadcaster.publish({"type": "device", "id": "cab-n"})

    seen: list[dict[str, Any]] = []
    ticket = world.client.post(
        "/api/v1/stream/ticket", headers=world.login("tech-n")
    ).json()["ticket"]
    threading.Thread(target=publish, daemon=True).start()
    with world.client.stream("GET", f"/api/v1/stream?ticket={ticket}") as answer:
        for line in answer.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line.removeprefix("data:")))
                if seen[-1]["type"] == "device":
                    break
    assert [i["id"] for i in seen if i["type"] == "rollout"] == [3]
