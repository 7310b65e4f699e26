"""Red-team findings on the fleet: taking another district's device.

Finding 4: a north technician registered a decoy in north and "replaced"
it with south's cabinet, which moved to north. Finding 8: after a south code
for ``cam-s-07`` existed, the north technician registered ``cam-s-07`` in
north; the south node enrolled into the north row. Real app, real CA (made
in the test's directory), SQLite.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from districtworld import build
from sqlmodel import Session

from central.fleet import registry
from central.main import load_or_create_ca
from provisioning.ca import make_csr, new_key

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from authworld import World


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(sqlite_url, tmp_path)
    w.services.ca = load_or_create_ca(w.services.settings, now=w.clock.now())
    with w.client:
        yield w
    w.services.engine.dispose()


def _site(world: World, device_id: str) -> str:
    with Session(world.services.engine) as session:
        return registry.get(session, device_id).site


def test_a_technician_cannot_replace_into_another_district(world: World) -> None:
    tech = world.login("tech-n")
    decoy = world.client.post(
        "/api/v1/devices",
        json={"id": "decoy", "kind": "signal_controller", "site": "north"},
        headers=tech,
    )
    assert decoy.status_code in {200, 201}, decoy.text
    for old, new in (("decoy", "cab-s"), ("cam-n", "cam-s")):
        answer = world.client.post(
            f"/api/v1/devices/{old}/replace", json={"new": new}, headers=tech
        )
        assert answer.status_code == 403, answer.text
        assert _site(world, new) == "south"
    with Session(world.services.engine) as session:
        assert registry.get(session, "decoy").retired_at is None


def test_a_device_does_not_replace_itself(world: World) -> None:
    answer = world.client.post(
        "/api/v1/devices/cab-n/replace",
        json={"new": "cab-n"},
        headers=world.login("root"),
    )
    assert answer.status_code in {400, 422}, answer.text
    with Session(world.services.engine) as session:
        assert registry.get(session, "cab-n").retired_at is None


def _csr(device_id: str) -> str:
    return make_csr(new_key(), device_id).decode()


def test_an_id_with_an_open_code_cannot_be_squatted(world: World) -> None:
    made = world.client.post(
        "/api/v1/enrolment/codes",
        json={"kind": "camera", "site": "south", "device_id": "cam-s-07"},
        headers=world.login("root"),
    )
    assert made.status_code == 201, made.text
    squat = world.client.post(
        "/api/v1/devices",
        json={"id": "cam-s-07", "kind": "camera", "site": "north"},
        headers=world.login("tech-n"),
    )
    assert squat.status_code == 409, squat.text
    assert "cam-s-07" in squat.json()["detail"]
    enrolled = world.client.post(
        f"/api/v1/enrolment/{made.json()['code']}",
        json={"csr": _csr("cam-s-07"), "client_time": world.clock.now().isoformat()},
    )
    assert enrolled.status_code == 200, enrolled.text
    assert _site(world, "cam-s-07") == "south"


def test_a_row_registered_behind_a_code_is_never_adopted(world: World) -> None:
    # An expired code no longer blocks the id; a row made then is not adopted
    # by a code made before it.
    made = world.client.post(
        "/api/v1/enrolment/codes",
        json={"kind": "camera", "site": "south", "device_id": "cam-s-08", "ttl_h": 1},
        headers=world.login("root"),
    )
    assert made.status_code == 201, made.text
    with Session(world.services.engine) as session:
        registry.register(
            session,
            device_id="cam-s-08",
            kind="camera",
            site="north",
            now=world.clock.now(),
        )
    world.clock.advance(timedelta(minutes=5).total_seconds())
    enrolled = world.client.post(
        f"/api/v1/enrolment/{made.json()['code']}",
        json={"csr": _csr("cam-s-08"), "client_time": world.clock.now().isoformat()},
    )
    assert enrolled.status_code == 409, enrolled.text
    assert enrolled.json()["detail"]["reason"] == "taken"
    assert _site(world, "cam-s-08") == "north"
