"""催办 and 督办升级 recorded once each, as the working days run out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from central.complaints.models import ComplaintStep, Department, ServiceType
from central.complaints.service import ComplaintService, Filing
from central.db import make_engine, migrate
from edge.clock import ManualClock

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in 岳阳
DAY = 86400


def test_urge_at_the_limit_and_escalate_two_working_days_later(
    db_url: str, tmp_path: Path
) -> None:
    del tmp_path
    engine = make_engine(db_url)
    migrate(engine)
    clock = ManualClock(T0)
    service = ComplaintService(clock=clock)
    with Session(engine) as session:
        session.add(
            Department(code="cgj", name="县城管局", head="王局长", members=["s"])
        )
        session.add(
            ServiceType(code="noise", name="噪音扰民", department="cgj", limit_days=5)
        )
        c = service.file(session, Filing(service_code="noise", description="吵"), at=T0)
        session.commit()
        cid = int(c.id or 0)
        for action in ("accept", "triage", "assign"):
            service.act(session, cid, action, actor="desk", role="complaints")
        assert service.supervise(session) == []
        clock.advance(8 * DAY)  # Tuesday 10 Nov: past Monday 9 Nov's limit
        assert [a for _, a in service.supervise(session)] == ["urge"]
        assert service.supervise(session) == []  # once
        clock.advance(3 * DAY)  # Friday 13 Nov: two working days after the limit
        assert [a for _, a in service.supervise(session)] == ["escalate"]
        notes = session.exec(
            select(ComplaintStep.note).where(ComplaintStep.actor == "system")
        ).all()
    assert notes == ["已到期催办，通知 县城管局", "督办升级，通知 王局长"]
    engine.dispose()
