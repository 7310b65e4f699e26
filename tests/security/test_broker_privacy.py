"""Node read privacy on the real broker (issue 16, finding 7).

A public kiosk (an attacker's node) tries to follow officers by reading
handhelds' retained state; a camera must still read its junction's
cabinet, granted by the ACL central writes from the camera's configuration.
"""

from __future__ import annotations

import queue
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from siteworld import Node, Site, running_site

from edge.bus import Received
from edge.protocol import encode, make, topics

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from edge.bus import PahoBus

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


@pytest.fixture
def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as site:
        yield site


def _got(bus: PahoBus, topic: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item = bus.inbox.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(item, Received) and item.topic == topic:
            return True
    return False


def _publish_state(site: Site, node: Node, body: dict[str, object]) -> None:
    bus = site.bus(node.tls, node.device_id)
    assert bus.wait_connected(10)
    env = make(node.device_id, "state", body, now=datetime.now(UTC))
    bus.publish(topics.state(node.device_id), encode(env), retain=True)
    time.sleep(0.5)
    bus.stop()


def test_a_kiosk_cannot_follow_an_officer_but_a_camera_reads_its_cabinet(
    secure_site: Site,
) -> None:
    site = secure_site
    handheld = site.enrol("handheld")
    kiosk = site.enrol("kiosk")
    cabinet = site.enrol("signal_controller")
    camera = site.enrol("camera")
    _publish_state(site, handheld, {"status": "online", "fix": [29.37, 113.1]})
    _publish_state(site, cabinet, {"status": "online", "signal": {"phase": 2}})

    # the kiosk asks for the handheld's state, by name and by wildcard
    spy = site.bus(
        kiosk.tls, kiosk.device_id, topics.state(handheld.device_id), "bl/v1/+/state"
    )
    assert spy.wait_connected(10)
    assert not _got(spy, topics.state(handheld.device_id), timeout=2)
    assert not _got(spy, topics.state(cabinet.device_id), timeout=0.5)

    # the camera is configured for its junction; central grants exactly that
    answer = site.client.put(
        f"/api/v1/policy/device/{camera.device_id}",
        headers=site.login("admin"),
        json={"junction": cabinet.device_id},
    )
    assert answer.status_code in (200, 201), answer.text
    site.central.broker_access.refresh_acl()  # the watch does it within seconds
    acl = (site.root / "broker" / "acl").read_text()
    assert f"user {camera.device_id}" in acl
    assert f"topic read bl/v1/{cabinet.device_id}/state" in acl
    time.sleep(1.5)  # the broker's owner sees the file change and reloads
    eye = site.bus(
        camera.tls,
        camera.device_id,
        topics.state(cabinet.device_id),
        topics.state(handheld.device_id),
    )
    assert eye.wait_connected(10)
    assert _got(eye, topics.state(cabinet.device_id), timeout=5)
    assert not _got(eye, topics.state(handheld.device_id), timeout=1.5)
    # and the kiosk still cannot
    late = site.bus(kiosk.tls, kiosk.device_id, topics.state(cabinet.device_id))
    assert late.wait_connected(10)
    assert not _got(late, topics.state(cabinet.device_id), timeout=2)


def test_the_acl_has_no_wildcard_state_read_for_nodes(secure_site: Site) -> None:
    acl = (secure_site.root / "broker" / "acl").read_text()
    assert "pattern read bl/v1/+/state" not in acl
    assert "pattern read bl/v1/%u/config" in acl
    conf = (secure_site.root / "broker" / "mosquitto.conf").read_text()
    assert "use_username_as_clientid true" in conf
