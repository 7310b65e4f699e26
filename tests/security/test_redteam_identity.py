"""Red-team findings on names: the camera junction and identities ending in a newline.

The attacker is a north technician. Finding 1: the camera's ``junction``
setting went verbatim into the broker's ACL (a trailing newline made a bare
line that turned the ACL off, a reserved name stopped central, a handheld's
or another district's cabinet became readable). Finding 14: ``$`` in the
identity checks accepted ``cam-x\\n`` as a device id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from districtworld import build
from sqlmodel import Session

from central.fleet.broker_access import BrokerAccess, camera_reads
from edge.protocol import topics
from edge.protocol.errors import TopicError
from provisioning.brokerconf import acl_text
from provisioning.identity import IdentityError, check_node_identity

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


def _reads(world: World) -> dict[str, list[str]]:
    with Session(world.services.engine) as session:
        return camera_reads(session)


def test_a_camera_junction_is_a_cabinet_of_its_own_district(world: World) -> None:
    tech = world.login("tech-n")
    url = "/api/v1/policy/device/cam-n"
    for junction in ("hh-n\n", "central-api-w1", "HH-N", "hh-n", "cab-s", "kiosk-n"):
        answer = world.client.put(url, json={"junction": junction}, headers=tech)
        assert answer.status_code == 422, (junction, answer.text)
        assert "junction" in answer.text
    assert _reads(world) == {}
    ok = world.client.put(url, json={"junction": "cab-n"}, headers=tech)
    assert ok.status_code == 200, ok.text
    assert _reads(world) == {"cam-n": ["cab-n"]}


def test_a_bad_junction_stored_anyway_never_reaches_the_acl(
    world: World, tmp_path: Path
) -> None:
    # A county layer (admin) names things no camera may read: each is skipped.
    root = world.login("root")
    for junction in ("hh-n", "cab-s", "sig-unknown"):
        answer = world.client.put(
            "/api/v1/policy/kind/camera", json={"junction": junction}, headers=root
        )
        assert answer.status_code == 200, answer.text
        reads = _reads(world)
        assert reads == ({"cam-s": ["cab-s"]} if junction == "cab-s" else {})
        text = acl_text(["central-api-w1"], reads=reads)
        assert "hh-n" not in text
    # and central still starts, writing an ACL
    access = BrokerAccess(
        engine=world.services.engine,
        ca=None,  # type: ignore[arg-type]  # ACL only: no ejecting here
        host="127.0.0.1",
        port=1,
        tls_ca_file=None,
        acl_file=tmp_path / "acl",
        services=["central-api-w1"],
    )
    access.start()
    access.stop()
    assert "user central-api-w1" in (tmp_path / "acl").read_text()


@pytest.mark.parametrize("name", ["cam-x\n", "cam-x\r\n", "\ncam-x"])
def test_a_device_id_with_a_newline_is_refused_everywhere(
    world: World, name: str
) -> None:
    with pytest.raises(IdentityError):
        check_node_identity(name)
    with pytest.raises(TopicError):
        topics.check_device_id(name)
    answer = world.client.post(
        "/api/v1/enrolment/codes",
        json={"kind": "camera", "site": "north", "device_id": name},
        headers=world.login("tech-n"),
    )
    assert answer.status_code in {400, 422}, answer.text


@pytest.mark.parametrize(
    ("user", "device", "name"),
    [
        ("tech-n", "hh-n", "alert"),
        ("tech-n", "hh-n", "dispatch"),
        ("tech-n", "hh-n", "lookup_result"),
        ("tech-n", "hh-n", "sos_ack"),
        ("tech-n", "cab-n", "ota"),
        ("traffic-n", "cab-n", "ota"),
        ("traffic-n", "cab-n", "mode"),
        ("root", "cab-n", "plan"),
        ("root", "kiosk-n", "format-disk"),
    ],
)
def test_the_generic_command_route_carries_only_everyday_commands(
    world: World, user: str, device: str, name: str
) -> None:
    # Finding 7: police and OTA commands went out signed through this route.
    answer = world.client.post(
        f"/api/v1/devices/{device}/commands/{name}",
        json={"args": {"text": "去某地"}},
        headers=world.login(user),
    )
    assert answer.status_code == 403, answer.text
    assert name in answer.json()["detail"]
    assert not [
        r for r in world.services.audit.search(limit=100) if "command" in r.action
    ]


def test_an_everyday_command_still_passes_the_route(world: World) -> None:
    answer = world.client.post(
        "/api/v1/devices/cab-n/commands/ping", json={}, headers=world.login("tech-n")
    )
    assert answer.status_code == 503  # past every check: no broker link here
