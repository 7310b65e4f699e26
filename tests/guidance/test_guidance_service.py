"""The guidance service on its own: a slowed link raises and clears an incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session, col, select
from support.central import central_services

from central.errors import ConfigError
from central.guidance.models import GuidanceLink, Incident, TravelTime
from central.guidance.service import (
    SECRET_FILE,
    GuidanceService,
    load_or_create_secret,
)
from central.police.models import Alarm
from edge.clock import ManualClock

if TYPE_CHECKING:
    from pathlib import Path

START = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)


def _read(camera: str, n: int, at: datetime) -> dict[str, Any]:
    body = {
        "read_id": f"{camera}-{n}",
        "text": f"湘F{n:05d}",
        "confidence": 0.9,
        "colour": "blue",
        "seen_at": at.isoformat(),
        "evidence": {},
    }
    return {"device": camera, "type": "plate", "body": body}


def test_a_slowed_link_raises_an_incident_and_clears_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    clock = ManualClock(START)
    svc = central_services(sqlite_url, tmp_path, clock=clock)
    guidance = GuidanceService(clock=clock, secret=b"k" * 32)
    with Session(svc.engine) as s:
        s.add(GuidanceLink(id="l1", name="岳阳大道", origin="a", destination="b"))
        s.commit()
    events = []
    for n in range(480):  # one vehicle every 5 s for 40 minutes
        entered = START + timedelta(seconds=5 * n)
        slow = timedelta(minutes=15) <= entered - START < timedelta(minutes=25)
        took = 400 if slow else 120 + n % 7
        events += [
            _read("a", n, entered),
            _read("b", n, entered + timedelta(seconds=took)),
        ]
    for _ in range(2):  # the second time: the same reads in new envelopes
        with Session(svc.engine) as s:
            guidance.take(s, events, clock.now())()
            s.commit()
    for _ in range(50):  # the service's minutes, one after the other
        clock.advance(60)
        with Session(svc.engine) as s:
            guidance.compute(s, clock.now())
            s.commit()
    with Session(svc.engine) as s:
        times = s.exec(select(TravelTime).order_by(col(TravelTime.minute))).all()
        assert max(t.seconds for t in times) > 350
        [row] = s.exec(select(Incident)).all()
        assert (row.source, row.lane, row.state) == ("travel_time", None, "cleared")
        assert row.evidence["baseline_s"] < 130
        alarm = s.get(Alarm, row.alarm)
        assert alarm is not None
        assert alarm.state == "resolved"
        assert "行程时间异常" in alarm.detail["text"]
    svc.engine.dispose()


def test_the_hash_key_is_made_once_private_and_long_enough(tmp_path: Path) -> None:
    key = load_or_create_secret(tmp_path)
    assert len(key) == 32
    assert load_or_create_secret(tmp_path) == key
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / SECRET_FILE).write_bytes(b"short")
    with pytest.raises(ConfigError, match="32"):
        load_or_create_secret(tmp_path)
