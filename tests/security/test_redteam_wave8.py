"""Wave 8 of the red team: the kiosk credential, the SOS lane, guidance.

An attacker holding one enrolled handheld published an SOS whose body
passed the schema but that the alarm desk could not take (a ``pressed_at``
without a time zone: Python refuses to subtract it from central's aware
clock); the TypeError ended the SOS lane's thread, and no later SOS was
taken. Now the SOS body refuses a time without a zone, and the lane
drops a message it cannot take and goes on: an officer's real SOS after
the poison one still raises the alarm.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError
from siteworld import Site, running_site
from sqlmodel import Session, select
from support.waiting import wait_until

from central.ingest.triage import Rejected, triage
from central.models import Event
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


def _taken(site: Site, device: str) -> bool:
    dropped = site.central.services.metrics.rejected.labels("unprocessable")
    with Session(site.central.services.engine) as session:
        stored = session.exec(select(Event).where(Event.device == device)).first()
    return stored is not None or dropped._value.get() >= 1


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
        lambda: _taken(secure_site, attacker.device_id),
        what="the lane to take (and not apply) the SOS without a time zone",
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
    assert "poison-1" not in _alarm_keys(secure_site)


def test_an_sos_time_without_a_zone_is_refused_by_the_schema() -> None:
    # The alarm desk subtracts pressed_at from central's aware clock: a
    # naive time raised TypeError there (the SOS lane's thread died of it).
    with pytest.raises(ValidationError, match="timezone"):
        SosBody.model_validate(
            {"sos_id": "s-1", "phase": "raised", "pressed_at": "2026-12-05T08:00:00"}
        )


@pytest.mark.mqtt
@pytest.mark.slow
def test_a_naive_time_in_a_position_does_not_stop_the_bulk_ingest(
    secure_site: Site,
) -> None:
    attacker = secure_site.enrol("handheld")
    officer = secure_site.enrol("handheld")
    bad = secure_site.bus(attacker.tls, attacker.device_id)
    good = secure_site.bus(officer.tls, officer.device_id)
    assert bad.wait_connected(10)
    assert good.wait_connected(10)
    now = datetime.now(UTC)
    fix = {"lat": 29.1, "lon": 113.1}
    naive = {**fix, "fix_ts": now.replace(tzinfo=None).isoformat()}
    bad.publish(
        topics.event(attacker.device_id, "position"),
        encode(make(attacker.device_id, "position", naive, now=now)),
    )
    wait_until(
        lambda: _taken(secure_site, attacker.device_id),
        what="the ingest to take (and not apply) the fix without a time zone",
        timeout=10,
    )
    aware = {**fix, "fix_ts": now.isoformat()}
    good.publish(
        topics.event(officer.device_id, "position"),
        encode(make(officer.device_id, "position", aware, now=now)),
    )
    wait_until(
        lambda: _taken(secure_site, officer.device_id),
        what="the officer's fix after the naive one",
        timeout=10,
    )


def test_a_nul_character_is_refused_before_any_database_sees_it() -> None:
    # PostgreSQL refuses NUL in text (DataError): an SOS id or a look-up's
    # reason holding one failed its batch's commit, and the lane and the
    # bulk ingest retried that batch for good, blocking all after it.
    now = datetime.now(UTC)
    body = {"sos_id": "a\x00b", "phase": "raised", "pressed_at": now.isoformat()}
    raw = encode(make("handheld-1", "sos", body, now=now))
    assert b"\\u0000" in raw
    result = triage(topics.sos("handheld-1"), raw, now=now, max_bytes=16 * 1024)
    assert isinstance(result, Rejected)
    assert result.reason == "nul"


@pytest.mark.mqtt
@pytest.mark.slow
def test_one_handheld_cannot_flood_the_desk_with_sos(secure_site: Site) -> None:
    # Finding (medium, fixed): one handheld raised any number of SOS alarms
    # at once, each with a new sos_id and a place of its choosing, each
    # alerting the officers near that place. A second SOS while one is open
    # now joins it (the press counted, the alarm moved to the newest place).
    attacker = secure_site.enrol("handheld")
    bus = secure_site.bus(attacker.tls, attacker.device_id)
    assert bus.wait_connected(10)
    now = datetime.now(UTC)
    for i in range(20):
        body = SosBody(
            sos_id=f"flood-{i}", phase="raised", pressed_at=now, lat=29.1, lon=113.1
        )
        bus.publish(
            topics.sos(attacker.device_id),
            encode(make(attacker.device_id, "sos", to_body(body), now=now)),
        )
    wait_until(lambda: _presses(secure_site) >= 20, what="the lane to take the flood")
    assert len(_alarm_keys(secure_site)) == 1
    with Session(secure_site.central.services.engine) as session:
        alarm = session.exec(select(Alarm).where(Alarm.kind == "sos")).one()
    assert alarm.key == "flood-0"
    assert len(alarm.detail["joined"]) == 19


def _presses(site: Site) -> int:
    with Session(site.central.services.engine) as session:
        rows = session.exec(select(Alarm).where(Alarm.kind == "sos")).all()
        return sum(int(a.detail.get("presses", 1)) for a in rows)
