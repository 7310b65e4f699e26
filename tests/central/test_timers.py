"""The timer worker beside ingest: every timer ticks, a failing one harms none.

Real timers on a real database: the offline sweep marks a silent device
offline; a timer that raises is logged and the others still run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session
from support.waiting import wait_until

from central.db import make_engine, migrate
from central.fleet import registry
from central.ingest.presence import OfflineSweep
from central.messaging.live import Broadcaster
from central.metrics import Metrics
from central.models import Device
from central.timers import TimerWorker
from edge.clock import ManualClock

if TYPE_CHECKING:
    from collections.abc import Iterator

    import sqlalchemy as sa

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


class BrokenTimer:
    """A timer with a bug: it raises on every tick."""

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self, engine: sa.Engine) -> None:
        self.ticks += 1
        raise RuntimeError(f"expected a working timer, got a broken one ({engine})")


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    migrate(engine)
    with Session(engine) as session:
        for device in ("cam-1", "cam-2"):
            registry.register(session, device_id=device, kind="sim", now=START)
        session.commit()
        for device, seen in (
            ("cam-1", START - timedelta(minutes=10)),
            ("cam-2", START),
        ):
            row = session.get(Device, device)
            assert row is not None
            row.online, row.last_seen = True, seen
            session.add(row)
        session.commit()
    yield engine
    engine.dispose()


def online(engine: sa.Engine, device: str) -> bool:
    with Session(engine) as session:
        row = session.get(Device, device)
        assert row is not None
        return row.online


def test_the_sweep_runs_beside_a_broken_timer(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(START)
    metrics = Metrics()
    broadcaster = Broadcaster()
    broken = BrokenTimer()
    sweep = OfflineSweep(
        clock=clock, metrics=metrics, broadcaster=broadcaster, offline_after_s=120
    )
    worker = TimerWorker(engine=engine, timers=[broken, sweep], period_s=0.01)
    worker.start()
    try:
        wait_until(lambda: not online(engine, "cam-1"))
        wait_until(lambda: broken.ticks >= 3)
        assert worker.alive
        assert online(engine, "cam-2")  # heard from at START: not silent
        assert metrics.registry.get_sample_value("baling_devices_online") == 1
        assert "Timer of BrokenTimer failed" in caplog.text
    finally:
        worker.stop()
    assert not worker.alive


def test_the_sweep_waits_for_its_period_on_the_clock(engine: sa.Engine) -> None:
    clock = ManualClock(START)
    sweep = OfflineSweep(
        clock=clock, metrics=Metrics(), offline_after_s=60, every_s=120
    )
    sweep.tick(engine)  # due at once: cam-1 silent for ten minutes
    assert not online(engine, "cam-1")
    clock.advance(61)  # cam-2 is silent now, but the next sweep is not due yet
    sweep.tick(engine)
    assert online(engine, "cam-2")
    clock.advance(60)
    sweep.tick(engine)
    assert not online(engine, "cam-2")
