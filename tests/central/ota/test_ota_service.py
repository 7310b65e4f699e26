"""The OTA service on a real database: waves, the director, and self-halting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from central.db import make_engine, migrate
from central.fleet import registry
from central.ota.models import Pin
from central.ota.release import build, publish
from central.ota.rollout import Plan
from central.ota.service import OtaService
from edge.clock import ManualClock

if TYPE_CHECKING:
    from pathlib import Path

    import sqlalchemy as sa

T0 = datetime.now(UTC)


def setup(db_url: str, tmp_path: Path, n: int) -> tuple[OtaService, sa.Engine, str]:
    engine = make_engine(db_url)
    migrate(engine)
    clock = ManualClock(T0)
    service = OtaService(clock=clock, data_dir=tmp_path / "central")
    archive = build("sim", "1.1.0", min_from="1.0.0", out=tmp_path / "dist")
    name = publish(
        archive,
        repo_dir=service.image_dir,
        offline=tmp_path / "offline",
        online=tmp_path / "central" / "ota-online-keys",
        now=T0,
    )
    with Session(engine) as session:
        for i in range(n):
            registry.register(session, device_id=f"sim-{i:03d}", kind="sim", now=T0)
        session.add(Pin(device="sim-000", by="ops", at=T0))
        session.commit()
    return service, engine, name


def report(
    service: OtaService, session: Session, rollout: int, device: str, state: str
) -> None:
    service.take(
        session,
        [
            {
                "device": device,
                "type": "ota",
                "body": {"rollout": rollout, "state": state},
            }
        ],
        T0,
    )
    session.commit()


def test_a_good_release_reaches_every_unpinned_node(
    db_url: str, tmp_path: Path
) -> None:
    service, engine, name = setup(db_url, tmp_path, 12)
    with Session(engine) as session:
        row = service.start(
            session,
            release=name,
            version="1.1.0",
            kind="sim",
            by="ops",
            plan=Plan(canary=2, growth=2),
        )
        assert sum(len(w) for w in row.waves) == 11  # sim-000 is pinned
        rid = int(row.id or 0)
        sent: list[str] = []
        for _ in range(10):
            out = service.step(session, row)
            session.commit()
            for _cmd, device, args in out.commands:
                assert args == {"release": name, "rollout": rid}
                sent.append(device)
                # the node's director now names the release
                assert name in service.director(device).load("targets").signed.targets
                report(service, session, rid, device, "committed")
            if row.state == "done":
                break
        view = service.view(session, row)
    assert row.state == "done"
    assert len(sent) == 11
    assert "sim-000" not in sent
    assert [w["size"] for w in view["waves"]] == [2, 4, 5]
    engine.dispose()


def test_a_bad_release_cancels_itself_after_the_canary(
    db_url: str, tmp_path: Path
) -> None:
    service, engine, name = setup(db_url, tmp_path, 30)
    with Session(engine) as session:
        row = service.start(
            session, release=name, version="1.1.0", kind="sim", by="ops"
        )
        out = service.step(session, row)
        session.commit()
        for _cmd, device, _args in out.commands:
            report(service, session, int(row.id or 0), device, "rolled_back")
        service.step(session, row)
        session.commit()
        view = service.view(session, row)
    assert row.state == "cancelled"
    assert view["touched"] == 2
    engine.dispose()
