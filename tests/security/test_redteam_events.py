"""Red-team findings on what nodes send: events only from the kinds that send them.

Finding 2: any enrolled node (a public kiosk) published ``event/sos``
cancelling the phone SOS ids it could predict, and the officer's later SOS
raised nothing. Now central takes each event type only from its kinds, keys
an alarm by the device that raised it, and keys phone SOS ids with its
secret. Events go in through the event sink, the one way in for MQTT and
the phone endpoint alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from districtworld import build
from sqlmodel import Session, select
from support.central import sender

from central.fleet import registry
from central.ingest.presence import Presence
from central.police.models import Alarm
from central.police.service import PoliceService
from edge.protocol import envelope
from edge.protocol.messages import StateBody

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from authworld import World

    from central.ingest.sink import Stored


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(sqlite_url, tmp_path)
    w.services.police = PoliceService(clock=w.clock, sender=sender(w.services))
    with Session(w.services.engine) as session:
        registry.register(
            session, device_id="hh-x", kind="handheld", site="north", now=w.clock.now()
        )
    with w.client:
        yield w
    w.services.engine.dispose()


def _send(world: World, device: str, kind: str, body: dict[str, Any]) -> Stored:
    now = world.clock.now()
    with Session(world.services.engine) as session:
        stored = world.services.sink().accept(
            session, [envelope.make(device, kind, body, now=now)], now
        )
        session.commit()
    stored.deliver()
    return stored


def _sos(sos_id: str, phase: str, world: World) -> dict[str, Any]:
    return {
        "sos_id": sos_id,
        "phase": phase,
        "pressed_at": world.clock.now().isoformat(),
        "lat": 29.14,
        "lon": 113.12,
    }


def _alarms(world: World) -> list[tuple[str, str]]:
    with Session(world.services.engine) as session:
        return [(a.device, a.state) for a in session.exec(select(Alarm)).all()]


@pytest.mark.parametrize(
    ("device", "kind", "body"),
    [
        ("kiosk-n", "sos", {"sos_id": "osmand-hh-n-1", "phase": "cancelled"}),
        ("kiosk-n", "position", {"lat": 29.1, "lon": 113.1}),
        ("kiosk-n", "lookup", {"plate": "湘F12345"}),
        ("cab-n", "plate", {"plate": "湘F12345"}),
        ("cam-n", "complaint", {"text": "假投诉"}),
        ("kiosk-n", "plan", {"version": 1, "state": "applied"}),
    ],
)
def test_an_event_type_is_taken_only_from_its_kinds(
    world: World, device: str, kind: str, body: dict[str, Any]
) -> None:
    stored = _send(world, device, kind, body)
    assert stored.refused == {"wrong_kind": 1}
    assert not stored.new


def test_a_kiosk_cannot_cancel_an_officers_sos_ahead(world: World) -> None:
    stored = _send(world, "kiosk-n", "sos", _sos("sos-1", "cancelled", world))
    assert stored.refused["wrong_kind"] == 1
    _send(world, "hh-n", "sos", _sos("sos-1", "raised", world))
    assert _alarms(world) == [("hh-n", "raised")]


def test_another_handheld_cannot_touch_an_alarm_by_its_id(world: World) -> None:
    # The other handheld takes the id first: the officer's SOS still raises
    _send(world, "hh-x", "sos", _sos("sos-2", "cancelled", world))
    _send(world, "hh-n", "sos", _sos("sos-2", "raised", world))
    world.clock.advance(5)
    _send(world, "hh-x", "sos", _sos("sos-2", "cancelled", world))
    assert ("hh-n", "raised") in _alarms(world)
    # and the officer cancels its own alarm
    _send(world, "hh-n", "sos", _sos("sos-2", "cancelled", world))
    assert ("hh-n", "cancelled") in _alarms(world)


def test_a_phone_sos_id_cannot_be_predicted(world: World) -> None:
    police = world.login("officer")
    named = world.client.put(
        "/api/v1/police/officers/hh-n", json={"name": "李警官"}, headers=police
    )
    assert named.status_code == 200, named.text
    ident = world.client.post(
        "/api/v1/police/officers/hh-n/osmand", headers=police
    ).json()["identifier"]
    at = int(world.clock.now().timestamp())
    minute = at // 60
    for m in range(minute - 1, minute + 2):  # the old, guessable ids
        _send(world, "hh-x", "sos", _sos(f"osmand-hh-n-{m}", "cancelled", world))
    answer = world.client.get(
        f"/osmand?id={ident}&lat=29.14&lon=113.12&timestamp={at}&accuracy=5&alarm=sos"
    )
    assert answer.status_code == 200, answer.text
    with Session(world.services.engine) as session:
        alarm = session.exec(select(Alarm).where(Alarm.device == "hh-n")).one()
    assert alarm.state == "raised"
    assert alarm.key.startswith("osmand-hh-n-")
    assert alarm.key not in {f"osmand-hh-n-{m}" for m in range(minute - 1, minute + 2)}


def test_a_node_state_puts_nothing_but_a_cabinets_phase_on_the_consoles(
    world: World,
) -> None:
    # Finding 3: a kiosk's retained state carried a forged SOS alarm as "signal".
    forged = {"type": "alarm", "kind": "sos", "device": "hh-n", "state": "raised"}
    now = world.clock.now()
    presence = Presence()
    states = {
        "kiosk-n": (
            StateBody(online=True, kind="kiosk", detail={"signal": forged}),
            now,
        ),
        "cab-n": (
            StateBody(
                online=True,
                kind="signal_controller",
                detail={"signal": {**forged, "stage": 2, "mode": "plan"}},
            ),
            now,
        ),
    }
    with Session(world.services.engine) as session:
        changed = presence.write(
            session, states=states, seen=dict.fromkeys(states, now)
        )
        session.commit()
    assert {c["type"] for c in changed} == {"device", "signal_state"}
    [signal] = [c for c in changed if c["type"] == "signal_state"]
    assert signal == {
        "type": "signal_state",
        "junction": "cab-n",
        "stage": 2,
        "mode": "plan",
    }


def test_device_events_hide_bodies_of_other_domains(world: World) -> None:
    # Finding 6: a technician read complainants and plate reads as device events.
    complaint = {"description": "邻居夜间施工", "name": "张三", "phone": "13800000000"}
    _send(world, "kiosk-n", "complaint", complaint)
    _send(world, "kiosk-n", "fault", {"code": "printer_paper"})
    _send(world, "cam-n", "plate", {"text": "湘F12345", "confidence": 0.98})

    def events(user: str, device: str) -> dict[str, dict[str, Any]]:
        answer = world.client.get(
            f"/api/v1/devices/{device}/events", headers=world.login(user)
        )
        assert answer.status_code == 200, answer.text
        return {e["type"]: e for e in answer.json()}

    seen = events("tech-n", "kiosk-n")
    assert seen["complaint"]["body"] == {}
    assert seen["complaint"]["redacted"] is True
    assert seen["fault"]["body"] == {"code": "printer_paper"}
    assert "张三" not in str(seen)
    plate = events("tech-n", "cam-n")["plate"]
    assert plate["body"] == {}
    assert plate["redacted"] is True
    # the domains' own roles still read them
    assert events("root", "kiosk-n")["complaint"]["body"]["phone"] == "13800000000"
    assert events("officer", "cam-n")["plate"]["body"]["text"] == "湘F12345"
