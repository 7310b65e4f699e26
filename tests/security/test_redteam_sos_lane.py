"""The SOS lane as an attacker sees it (issue 22): nobody raises an SOS as another.

A handheld's SOS has its own topic (``bl/v1/<id>/sos``) outside ``event/``.
On the real secured site (mutual TLS, the ACL central writes, central's
SOS lane on its own service identity) an enrolled node tries to raise an
SOS in an officer's name: on the officer's topic (the broker drops it), on
its own topic with the officer's name inside (central refuses the
mismatch), and a kiosk on its own topic (central refuses the kind). The
officer's own SOS still goes through the lane.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from siteworld import Site, running_site
from sqlmodel import Session, select
from support.waiting import wait_until

from central.police.models import Alarm
from edge.protocol import encode, make, topics
from edge.protocol.messages import to_body
from edge.protocol.police import SosBody

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from edge.bus import PahoBus

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


@pytest.fixture
def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as site:
        yield site


def _sos(bus: PahoBus, topic: str, device: str, sos_id: str) -> None:
    now = datetime.now(UTC)
    body = SosBody(sos_id=sos_id, phase="raised", pressed_at=now, lat=29.1, lon=113.1)
    bus.publish(topic, encode(make(device, "sos", to_body(body), now=now)))


def _alarms(site: Site) -> list[Alarm]:
    with Session(site.central.services.engine) as session:
        return list(session.exec(select(Alarm).where(Alarm.kind == "sos")).all())


def _rejected(site: Site, reason: str) -> float:
    return float(site.central.services.metrics.rejected.labels(reason)._value.get())


def test_no_node_raises_an_sos_in_an_officers_name(secure_site: Site) -> None:
    officer = secure_site.enrol("handheld")
    other = secure_site.enrol("handheld")
    kiosk = secure_site.enrol("kiosk")
    attacker = secure_site.bus(other.tls, other.device_id)
    booth = secure_site.bus(kiosk.tls, kiosk.device_id)
    assert attacker.wait_connected(10)
    assert booth.wait_connected(10)
    mismatched, wrong_kind = (
        _rejected(secure_site, "topic_mismatch"),
        _rejected(secure_site, "wrong_kind"),
    )

    # The officer's own topic: the ACL lets no other node write it.
    _sos(attacker, topics.sos(officer.device_id), officer.device_id, "forged-1")
    # Its own topic, the officer's name inside: refused by central.
    _sos(attacker, topics.sos(other.device_id), officer.device_id, "forged-2")
    # A kiosk raising an SOS on its own topic: not a kind that raises one.
    _sos(booth, topics.sos(kiosk.device_id), kiosk.device_id, "forged-3")
    wait_until(
        lambda: (
            _rejected(secure_site, "topic_mismatch") > mismatched
            and _rejected(secure_site, "wrong_kind") > wrong_kind
        ),
        what="central to refuse the two that reached the lane",
    )

    own = secure_site.bus(officer.tls, officer.device_id)
    assert own.wait_connected(10)
    _sos(own, topics.sos(officer.device_id), officer.device_id, "real-1")
    [alarm] = wait_until(lambda: _alarms(secure_site), what="the officer's SOS")
    assert (alarm.device, alarm.key) == (officer.device_id, "real-1")
    assert [a.key for a in _alarms(secure_site)] == ["real-1"]
