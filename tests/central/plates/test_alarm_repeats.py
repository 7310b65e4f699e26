"""Alarm hygiene: a listed car that stays in front of a camera is one alarm.

Repeated exact hits of one plate at one camera within the window update the
open alarm (count, last seen, the latest images) instead of raising new
ones; another camera, a closed alarm or a gap longer than the window raise a
new one. On a real database with a manual clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlmodel import Session, col, select

from central.db import make_engine, migrate
from central.plates.models import Hit, Suspect
from central.plates.service import PlateRules, PlateService
from central.police.models import Alarm
from edge.clock import ManualClock
from edge.protocol.evidence import seal
from edge.protocol.plates import PlateEventBody

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import sqlalchemy as sa

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
LISTED = "湘F11111"
KEY = ed25519.Ed25519PrivateKey.generate()


def read(n: int, at: datetime, text: str = LISTED) -> PlateEventBody:
    images = {"plate": f"jpeg-{text}-{n}".encode()}
    return PlateEventBody(
        read_id=f"r{n}",
        text=text,
        confidence=0.99,
        colour="blue",
        seen_at=at,
        evidence=seal(images, {"text": text}, key=KEY),
    )


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    migrate(engine)
    with Session(engine) as session:
        session.add(
            Suspect(
                plate=LISTED, category="other", valid_from=T0, added_by="t", added_at=T0
            )
        )
        session.commit()
    yield engine
    engine.dispose()


def service(tmp_path: Path, clock: ManualClock, window_s: float) -> PlateService:
    return PlateService(
        clock=clock, data_dir=tmp_path, rules=PlateRules(repeat_window_s=window_s)
    )


def feed(
    engine: sa.Engine, svc: PlateService, camera: str, n: int, at: datetime
) -> None:
    with Session(engine) as session:
        svc.record(session, camera, read(n, at), at)
        session.commit()


def alarms(engine: sa.Engine) -> list[Alarm]:
    with Session(engine) as session:
        return list(session.exec(select(Alarm).order_by(col(Alarm.id))).all())


def test_a_car_seen_every_27_seconds_is_one_alarm_with_a_count(
    engine: sa.Engine, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    svc = service(tmp_path, clock, 900)
    for n in range(32):  # 14 minutes of the 27-second repeats
        at = T0 + timedelta(seconds=27 * n)
        feed(engine, svc, "camera-1", n, at)
    [alarm] = alarms(engine)
    assert alarm.detail["plate"] == LISTED
    assert alarm.detail["count"] == 32
    assert alarm.repeats == 31
    assert alarm.detail["first_seen"] == T0.isoformat()
    assert alarm.detail["last_seen"] == (T0 + timedelta(seconds=27 * 31)).isoformat()
    with Session(engine) as session:
        hits = session.exec(select(Hit)).all()
    assert len(hits) == 32  # every hit is kept, all on the one alarm
    assert {h.alarm_id for h in hits} == {alarm.id}
    assert alarm.detail["hit"] == max(int(h.id or 0) for h in hits)


def test_another_camera_a_gap_or_a_closed_alarm_raise_a_new_one(
    engine: sa.Engine, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    svc = service(tmp_path, clock, 600)
    feed(engine, svc, "camera-1", 1, T0)
    feed(engine, svc, "camera-2", 2, T0 + timedelta(seconds=30))
    assert [a.device for a in alarms(engine)] == ["camera-1", "camera-2"]

    # Eleven minutes after its last sighting: a new visit, a new alarm.
    feed(engine, svc, "camera-1", 3, T0 + timedelta(seconds=300))
    feed(engine, svc, "camera-1", 4, T0 + timedelta(seconds=300 + 601))
    cam1 = [a for a in alarms(engine) if a.device == "camera-1"]
    assert [a.detail["count"] for a in cam1] == [2, 1]

    # A closed alarm is not reopened by the next read.
    with Session(engine) as session:
        last = session.get_one(Alarm, cam1[-1].id)
        last.state = "resolved"
        session.add(last)
        session.commit()
    feed(engine, svc, "camera-1", 5, T0 + timedelta(seconds=960))
    assert len([a for a in alarms(engine) if a.device == "camera-1"]) == 3


def test_a_late_backlog_read_counts_without_moving_last_seen_back(
    engine: sa.Engine, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    svc = service(tmp_path, clock, 600)
    feed(engine, svc, "camera-1", 1, T0 + timedelta(seconds=120))
    feed(engine, svc, "camera-1", 2, T0)  # delivered late from the outbox
    [alarm] = alarms(engine)
    assert alarm.detail["count"] == 2
    assert alarm.detail["last_seen"] == (T0 + timedelta(seconds=120)).isoformat()


def test_a_zero_window_raises_one_alarm_per_hit(
    engine: sa.Engine, tmp_path: Path
) -> None:
    svc = service(tmp_path, ManualClock(T0), 0)
    feed(engine, svc, "camera-1", 1, T0)
    feed(engine, svc, "camera-1", 2, T0 + timedelta(seconds=27))
    assert len(alarms(engine)) == 2
