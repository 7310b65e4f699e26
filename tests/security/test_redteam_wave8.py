"""Wave 8 of the red team: the kiosk credential, the SOS lane, guidance.

An attacker holding one enrolled handheld publishes an SOS whose body
passes the schema but that the alarm desk cannot take (a ``pressed_at``
without a time zone: Python refuses to subtract it from central's aware
clock). The lane must drop that one message and go on: an officer's real
SOS after it still raises the alarm.
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


@pytest.fixture
def secure_site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, sqlite_url) as site:
        yield site


def _alarm_keys(site: Site) -> list[str]:
    with Session(site.central.services.engine) as session:
        rows = session.exec(select(Alarm).where(Alarm.kind == "sos")).all()
        return [a.key for a in rows]


@pytest.mark.mqtt
@pytest.mark.slow
def test_a_poison_sos_does_not_stop_the_lane(secure_site: Site) -> None:
    attacker = secure_site.enrol("handheld")
    officer = secure_site.enrol("handheld")
    bad = secure_site.bus(attacker.tls, attacker.device_id)
    good = secure_site.bus(officer.tls, officer.device_id)
    assert bad.wait_connected(10)
    assert good.wait_connected(10)
    now = datetime.now(UTC)
    body = {
        "sos_id": "poison-1",
        "phase": "raised",
        "pressed_at": now.replace(tzinfo=None).isoformat(),  # no time zone
    }
    bad.publish(
        topics.sos(attacker.device_id),
        encode(make(attacker.device_id, "sos", body, now=now)),
    )
    wait_until(
        lambda: (
            secure_site.central.services.metrics.rejected.labels(
                "unprocessable"
            )._value.get()
            >= 1
        ),
        what="the lane to drop the SOS it cannot take",
    )
    real = SosBody(sos_id="real-1", phase="raised", pressed_at=now, lat=29.1, lon=113.1)
    good.publish(
        topics.sos(officer.device_id),
        encode(make(officer.device_id, "sos", to_body(real), now=now)),
    )
    wait_until(
        lambda: "real-1" in _alarm_keys(secure_site),
        what="the officer's SOS after the poison one",
    )
