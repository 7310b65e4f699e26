"""The alarm desk through the police service: SOS, beat and stationary alarms.

Events go in as the ingest worker hands them over (``PoliceService.apply``)
on a real database (SQLite and PostgreSQL), with a manual clock; what the
desk decides comes back as the ``Outbound`` it returns and as the stored
alarms. Sending after the commit (the link) is left to the e2e journeys.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session, select

from central.db import make_engine, migrate
from central.errors import ConflictError, NotFoundError
from central.police.beat import BeatRules
from central.police.models import Alarm, Beat, Officer, Receipt
from central.police.rules import PoliceRules
from central.police.service import PoliceService
from central.police.sos import SosRules
from edge.clock import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    import sqlalchemy as sa

    from central.messaging.outbound import Outbound

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in 岳阳, inside the shift
LAT, LON = 29.13, 113.28  # 荣家湾
RULES = PoliceRules(
    sos=SosRules(repeat_s=10.0, escalate_s=30.0),
    beat=BeatRules(exit_fixes=2, exit_s=60.0, leader_after_s=120.0, stationary_s=600.0),
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    made = make_engine(db_url)
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def desk(clock: ManualClock) -> PoliceService:
    return PoliceService(clock=clock, rules=RULES)


def apply(
    desk: PoliceService,
    engine: sa.Engine,
    device: str,
    type_: str,
    body: dict[str, Any],
) -> Outbound:
    """One event as the ingest worker hands it over, committed."""
    with Session(engine) as session:
        out = desk.apply(
            session,
            [{"type": type_, "device": device, "body": body}],
            desk.clock.now(),
        )
        session.commit()
    return out


def fix(
    desk: PoliceService, engine: sa.Engine, device: str, lat: float, lon: float
) -> Outbound:
    body = {"lat": lat, "lon": lon, "fix_ts": desk.clock.now().isoformat()}
    return apply(desk, engine, device, "position", body)


def sos(
    desk: PoliceService,
    engine: sa.Engine,
    device: str,
    *,
    phase: str = "raised",
    pressed_at: datetime | None = None,
) -> Outbound:
    body = {
        "sos_id": f"sos-{device}-1",
        "phase": phase,
        "pressed_at": (pressed_at or desk.clock.now()).isoformat(),
        "lat": LAT,
        "lon": LON,
    }
    return apply(desk, engine, device, "sos", body)


def officers(engine: sa.Engine, *rows: Officer) -> None:
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()


def alarms(engine: sa.Engine, kind: str) -> list[Alarm]:
    with Session(engine) as session:
        return list(session.exec(select(Alarm).where(Alarm.kind == kind)).all())


def to(out: Outbound, name: str) -> dict[str, list[dict[str, Any]]]:
    """The commands named ``name`` in ``out``, by device."""
    sent: dict[str, list[dict[str, Any]]] = {}
    for command, device, args in out.commands:
        if command == name:
            sent.setdefault(device, []).append(args)
    return sent


@pytest.fixture
def street(desk: PoliceService, engine: sa.Engine, clock: ManualClock) -> PoliceService:
    """王 presses SOS; 李 is 400 m away, 赵 3 km, 陈 near with a stale fix."""
    officers(
        engine,
        Officer(device="hh-wang", name="王警官", unit="一中队"),
        Officer(device="hh-li", name="李警官", unit="一中队"),
        Officer(device="hh-zhao", name="赵警官", unit="二中队"),
        Officer(device="hh-chen", name="陈警官", unit="二中队"),
        Officer(device="hh-lead", name="刘队长", unit="一中队", leader=True),
    )
    fix(desk, engine, "hh-chen", LAT + 0.002, LON)
    clock.advance(RULES.fresh_s + 60)  # 陈's fix is now too old to place him
    fix(desk, engine, "hh-wang", LAT, LON)
    fix(desk, engine, "hh-li", LAT + 0.0036, LON)
    fix(desk, engine, "hh-zhao", LAT + 0.03, LON)
    fix(desk, engine, "hh-lead", LAT + 0.04, LON)  # 4.4 km: only escalation reaches
    return desk


def test_an_sos_alerts_the_fresh_officers_within_the_radius_and_answers_the_sender(
    street: PoliceService, engine: sa.Engine
) -> None:
    out = sos(street, engine, "hh-wang")
    alerts = to(out, "alert")
    assert list(alerts) == ["hh-li"]  # not 赵 (3 km), not 陈 (stale), not 王 himself
    assert alerts["hh-li"][0]["kind"] == "sos"
    distance = re.fullmatch(
        r"王警官 紧急求救，距您 (\d+) 米", alerts["hh-li"][0]["text"]
    )
    assert distance is not None
    assert 390 <= int(distance[1]) <= 410  # 0.0036° of latitude is 400 m
    assert to(out, "sos_ack")["hh-wang"][0]["phase"] == "raised"
    [alarm] = alarms(engine, "sos")
    assert (alarm.state, alarm.delayed) == ("raised", False)
    assert [a["device"] for a in alarm.alerted] == ["hh-li"]
    with Session(engine) as session:
        assert session.exec(select(Receipt.device)).all() == ["hh-li"]
    assert out.live[-1]["type"] == "alarm"


def test_the_same_sos_arriving_again_is_one_alarm_and_alerts_nobody_twice(
    street: PoliceService, engine: sa.Engine
) -> None:
    sos(street, engine, "hh-wang")
    again = sos(street, engine, "hh-wang")  # the handheld repeats until answered
    assert to(again, "alert") == {}
    assert list(to(again, "sos_ack")) == ["hh-wang"]
    assert len(alarms(engine, "sos")) == 1


def test_an_sos_pressed_long_before_central_heard_of_it_is_marked_delayed(
    street: PoliceService, engine: sa.Engine, clock: ManualClock
) -> None:
    sos(street, engine, "hh-wang", pressed_at=clock.now() - timedelta(seconds=90))
    assert alarms(engine, "sos")[0].delayed


def test_the_officer_cancelling_stands_down_everyone_alerted(
    street: PoliceService, engine: sa.Engine
) -> None:
    sos(street, engine, "hh-wang")
    out = sos(street, engine, "hh-wang", phase="cancelled")
    assert to(out, "alert")["hh-li"][0]["text"] == "王警官 已取消求救"
    assert to(out, "sos_ack")["hh-wang"][0]["phase"] == "cancelled"
    [alarm] = alarms(engine, "sos")
    assert (alarm.state, alarm.note, alarm.closed_by) == (
        "cancelled",
        "警员取消",
        "hh-wang",
    )


def test_an_unanswered_sos_repeats_then_escalates_to_the_unit_leader(
    street: PoliceService, engine: sa.Engine, clock: ManualClock
) -> None:
    sos(street, engine, "hh-wang")
    street.tick(engine)
    assert alarms(engine, "sos")[0].repeats == 0  # nothing is due yet
    clock.advance(RULES.sos.repeat_s + 1)
    street.tick(engine)
    assert alarms(engine, "sos")[0].repeats == 1
    clock.advance(RULES.sos.escalate_s)
    street.tick(engine)
    [alarm] = alarms(engine, "sos")
    assert alarm.escalated_at is not None
    assert alarm.detail["leaders"] == ["hh-lead"]
    # the wider escalation radius reaches 赵 (3 km) and the leader (4.4 km)
    assert {a["device"] for a in alarm.alerted} == {"hh-li", "hh-zhao", "hh-lead"}


def test_operators_acknowledge_assign_and_resolve_an_alarm(
    street: PoliceService, engine: sa.Engine
) -> None:
    sos(street, engine, "hh-wang")
    alarm_id = alarms(engine, "sos")[0].id
    assert alarm_id is not None
    with Session(engine) as session:
        alarm, out = street.transition(session, alarm_id, to="acknowledged", by="desk")
        assert (alarm.state, alarm.acknowledged_by) == ("acknowledged", "desk")
        assert to(out, "sos_ack")["hh-wang"][0]["phase"] == "acknowledged"
        assert out.audit[0]["action"] == "alarm.acknowledged"

        alarm, out = street.transition(
            session,
            alarm_id,
            to="assigned",
            by="desk",
            responders=["hh-li", "hh-li", "hh-zhao"],
        )
        assert alarm.responders == ["hh-li", "hh-zhao"]  # each once, in order
        dispatched = to(out, "dispatch")
        assert sorted(dispatched) == ["hh-li", "hh-zhao"]
        assert dispatched["hh-li"][0]["text"] == "请立即前往支援 王警官"
        assert dispatched["hh-li"][0]["priority"] == "urgent"

        alarm, _ = street.transition(
            session, alarm_id, to="resolved", by="desk", note="已处置"
        )
        assert (alarm.state, alarm.note, alarm.closed_by) == (
            "resolved",
            "已处置",
            "desk",
        )
        assert alarm.closed_at is not None

        with pytest.raises(ConflictError, match="resolved"):
            street.transition(session, alarm_id, to="acknowledged", by="desk")
        with pytest.raises(NotFoundError, match="no alarm 999999"):
            street.transition(session, 999_999, to="acknowledged", by="desk")


def test_a_bad_event_is_logged_and_dropped_and_the_rest_still_apply(
    street: PoliceService, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with Session(engine) as session:
        out = street.apply(
            session,
            [
                {"type": "sos", "device": "hh-wang", "body": {"phase": "raised"}},
                {
                    "type": "sos",
                    "device": "hh-wang",
                    "body": {
                        "sos_id": "sos-ok",
                        "phase": "raised",
                        "pressed_at": START.isoformat(),
                    },
                },
            ],
            street.clock.now(),
        )
        session.commit()
    assert "sos_id" in caplog.text
    assert list(to(out, "sos_ack")) == ["hh-wang"]
    assert [a.key for a in alarms(engine, "sos")] == ["sos-ok"]


# -- beats ----------------------------------------------------------------------
@pytest.fixture
def on_beat(
    desk: PoliceService, engine: sa.Engine, clock: ManualClock
) -> PoliceService:
    """王 patrols a 1 km square around 荣家湾 from 08:00 to 20:00, with a leader."""
    d = 0.005
    square = [
        [LON - d, LAT - d],
        [LON + d, LAT - d],
        [LON + d, LAT + d],
        [LON - d, LAT + d],
        [LON - d, LAT - d],
    ]
    with Session(engine) as session:
        beat = Beat(
            name="荣家湾一号责任区",
            unit="一中队",
            geometry={"type": "Polygon", "coordinates": [square]},
            shifts=[{"days": list(range(7)), "start": "08:00", "end": "20:00"}],
            updated_at=clock.now(),
        )
        session.add(beat)
        session.commit()
        session.refresh(beat)
        session.add_all(
            [
                Officer(
                    device="hh-wang", name="王警官", unit="一中队", beat_id=beat.id
                ),
                Officer(device="hh-lead", name="刘队长", unit="一中队", leader=True),
            ]
        )
        session.commit()
    fix(desk, engine, "hh-wang", LAT, LON)
    return desk


def test_leaving_the_beat_raises_an_alarm_and_coming_back_resolves_it(
    on_beat: PoliceService, engine: sa.Engine, clock: ManualClock
) -> None:
    clock.advance(10)
    first = fix(on_beat, engine, "hh-wang", LAT + 0.02, LON)
    assert to(first, "alert") == {}  # one fix outside may be a GNSS jump
    clock.advance(10)
    second = fix(on_beat, engine, "hh-wang", LAT + 0.02, LON)
    assert to(second, "alert")["hh-wang"][0]["text"] == "您已离开责任区，请返回"
    [alarm] = alarms(engine, "beat_exit")
    assert alarm.state == "raised"

    clock.advance(10)
    fix(on_beat, engine, "hh-wang", LAT, LON)
    [alarm] = alarms(engine, "beat_exit")
    assert (alarm.state, alarm.note) == ("resolved", "已返回责任区")


def test_a_silent_handheld_outside_its_beat_is_escalated_to_its_leader(
    on_beat: PoliceService, engine: sa.Engine, clock: ManualClock
) -> None:
    for _ in range(2):
        clock.advance(10)
        fix(on_beat, engine, "hh-wang", LAT + 0.02, LON)
    clock.advance(RULES.beat.leader_after_s)  # and then nothing more is heard
    on_beat.tick(engine)
    [alarm] = alarms(engine, "beat_exit")
    assert alarm.escalated_at is not None
    assert alarm.detail["leaders"] == ["hh-lead"]


def test_standing_still_too_long_on_duty_raises_then_moving_resolves(
    on_beat: PoliceService, engine: sa.Engine, clock: ManualClock
) -> None:
    found: dict[str, list[dict[str, Any]]] = {}
    for _ in range(8):
        clock.advance(RULES.beat.stationary_s / 6)
        found |= to(fix(on_beat, engine, "hh-wang", LAT, LON + 0.0001), "alert")
    assert found["hh-wang"][0]["text"] == "您已长时间未移动，请报告情况"
    assert [a.state for a in alarms(engine, "stationary")] == ["raised"]
    clock.advance(30)
    fix(on_beat, engine, "hh-wang", LAT + 0.003, LON)
    [alarm] = alarms(engine, "stationary")
    assert (alarm.state, alarm.note) == ("resolved", "已恢复移动")
