"""The event sink on a real database: one way in, each effect once.

The services fed are the real ones (the police service places an officer
from a ``position`` event), and the audit log is the real chained log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select

from central.audit.log import AuditLog
from central.db import make_engine, migrate
from central.fleet import registry
from central.ingest.sink import EventSink, Stored, _sqlite_time
from central.models import Device, Event
from central.police.models import Officer
from central.police.service import PoliceService
from edge.clock import ManualClock
from edge.protocol import make

if TYPE_CHECKING:
    from collections.abc import Iterator

    from edge.protocol.envelope import Envelope

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
LAT, LON = 29.14, 113.25


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    with Session(engine) as session:
        for device in ("hh-1", "hh-2", "old-1"):
            registry.register(session, device_id=device, kind="handheld", now=START)
        session.commit()
        old = session.get(Device, "old-1")
        assert old is not None
        old.retired_at = START
        session.add(old)
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def audit(engine: sa.Engine) -> AuditLog:
    return AuditLog(engine, Ed25519PrivateKey.generate())


@pytest.fixture
def sink(clock: ManualClock, audit: AuditLog) -> EventSink:
    return EventSink(consumers=[PoliceService(clock=clock)], audit=audit)


def position(device: str, lat: float = LAT) -> Envelope:
    body = {"lat": lat, "lon": LON, "fix_ts": START.isoformat()}
    return make(device, "position", body, now=START)


def accept(sink: EventSink, engine: sa.Engine, envelopes: list[Envelope]) -> Stored:
    with Session(engine) as session:
        stored = sink.accept(session, envelopes, START)
        session.commit()
    stored.deliver()
    return stored


def events(engine: sa.Engine) -> list[Event]:
    with Session(engine) as session:
        return list(session.exec(select(Event)).all())


def officer(engine: sa.Engine, device: str) -> Officer | None:
    with Session(engine) as session:
        return session.get(Officer, device)


def test_new_events_are_stored_and_applied_once(
    sink: EventSink, engine: sa.Engine
) -> None:
    first = position("hh-1")
    with Session(engine) as session:
        stored = sink.accept(session, [first, first, position("hh-2")], START)
        session.commit()
    assert stored.new == {str(e.id) for e in events(engine)}
    assert len(stored.new) == 2
    assert (stored.distinct, stored.repeats, stored.duplicates) == (2, 1, 1)
    assert stored.heard == {"hh-1", "hh-2"}
    placed = officer(engine, "hh-1")
    assert placed is not None
    assert (placed.lat, placed.lon) == (LAT, LON)

    # Delivered again (a redelivery after a lost acknowledgement): no effect.
    moved = first.model_copy(update={"body": {**first.body, "lat": LAT + 0.01}})
    with Session(engine) as session:
        again = sink.accept(session, [moved], START)
        session.commit()
    assert again.new == frozenset()
    assert again.duplicates == 1
    assert len(events(engine)) == 2
    still = officer(engine, "hh-1")
    assert still is not None
    assert still.lat == LAT


def test_unknown_and_retired_devices_are_refused_by_reason(
    sink: EventSink, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        stored = sink.accept(
            session, [position("ghost-1"), position("old-1"), position("hh-1")], START
        )
        session.commit()
    assert stored.refused == {"unknown_device": 2}
    assert stored.heard == {"hh-1"}
    assert [e.device for e in events(engine)] == ["hh-1"]
    assert officer(engine, "ghost-1") is None
    assert officer(engine, "old-1") is None


def test_a_nodes_refusal_of_a_command_is_audited_after_the_commit(
    sink: EventSink, engine: sa.Engine, audit: AuditLog
) -> None:
    refusal = make(
        "hh-1",
        "security",
        {"command": "reboot", "reason": "signature: expected a trusted key"},
        now=START,
    )
    with Session(engine) as session:
        stored = sink.accept(session, [refusal], START)
        assert audit.search(action="command.refused") == []  # not before the commit
        session.commit()
    stored.deliver()
    (record,) = audit.search(action="command.refused")
    assert (record.actor, record.target) == ("hh-1", "hh-1/reboot")
    assert record.detail["event"] == str(refusal.id)
    # The same refusal redelivered is not audited twice.
    accept(sink, engine, [refusal])
    assert len(audit.search(action="command.refused")) == 1
    assert audit.verify() is None


def test_nothing_is_stored_when_the_caller_does_not_commit(
    sink: EventSink, engine: sa.Engine
) -> None:
    with Session(engine) as session:
        sink.accept(session, [position("hh-1")], START)
        session.rollback()
    assert events(engine) == []
    assert officer(engine, "hh-1") is None


def test_events_read_back_as_they_were_sent(sink: EventSink, engine: sa.Engine) -> None:
    """The batch insert (arrays on PostgreSQL, VALUES on SQLite) keeps each field."""
    sent = [
        make("hh-1", "fault", {"text": '湘 灯杆 "7"', "n": [1, 2.5, None]}, now=START),
        make("hh-2", "fault", {}, now=START.replace(microsecond=0)),
    ]
    later = START.replace(second=30, microsecond=123456)
    with Session(engine) as session:
        stored = sink.accept(session, sent, later)
        session.commit()
    assert stored.new == {str(env.id) for env in sent}
    got = {e.id: e for e in events(engine)}
    for env in sent:
        row = got[str(env.id)]
        assert (row.device, row.type, row.body) == (env.device, env.type, env.body)
        assert row.ts.replace(tzinfo=UTC) == env.ts
        assert row.received_at.replace(tzinfo=UTC) == later


def test_sqlite_times_are_stored_as_sqlalchemy_stores_them() -> None:
    from sqlalchemy.dialects import sqlite  # noqa: PLC0415

    process = (
        sa.DateTime(timezone=True)
        .dialect_impl(sqlite.dialect())
        .bind_processor(sqlite.dialect())
    )
    assert process is not None
    for value in (
        START,
        START.replace(microsecond=7),
        datetime(1999, 1, 2, tzinfo=UTC),
    ):
        assert _sqlite_time(value) == process(value)
