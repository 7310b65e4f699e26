"""The plate service on a real database: retention deletes what hit nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlmodel import Session, select

from central.db import make_engine, migrate
from central.plates.models import Sighting, Suspect
from central.plates.service import PlateRules, PlateService
from edge.clock import ManualClock
from edge.protocol.evidence import seal
from edge.protocol.plates import PlateEventBody

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def read(text: str, n: int) -> PlateEventBody:
    key = ed25519.Ed25519PrivateKey.generate()
    images = {"plate": f"jpeg-{text}".encode()}
    return PlateEventBody(
        read_id=f"r{n}",
        text=text,
        confidence=0.99,
        colour="blue",
        seen_at=T0,
        evidence=seal(images, {"text": text}, key=key),
    )


def test_reads_that_hit_nothing_are_deleted_after_retention(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    clock = ManualClock(T0)
    service = PlateService(
        clock=clock, data_dir=tmp_path, rules=PlateRules(retention_days=30)
    )
    with Session(engine) as session:
        session.add(
            Suspect(
                plate="湘F11111",
                category="stolen",
                valid_from=T0,
                added_by="t",
                added_at=T0,
            )
        )
        session.commit()
        service.record(session, "cam-1", read("湘F11111", 1), T0)
        service.record(session, "cam-1", read("湘F22222", 2), T0)
        session.commit()
    assert len(list((tmp_path / "evidence").glob("*.jpg"))) == 2
    clock.advance(29 * 86400)
    with Session(engine) as session:
        assert service.purge(session) == 0
    clock.advance(2 * 86400)
    with Session(engine) as session:
        assert service.purge(session) == 1
        left = session.exec(select(Sighting.plate)).all()
    assert left == ["湘F11111"]  # the hit is kept as long as its case needs it
    assert len(list((tmp_path / "evidence").glob("*.jpg"))) == 1
    engine.dispose()
