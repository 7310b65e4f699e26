"""The police service's tables (SQLModel): officers, fixes, beats, alarms, and more.

Messages and their receipts, and phones' OsmAnd identifiers too. Created by
Alembic migrations 0006 and 0011; queries live in :mod:`central.police.service`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from central.models import json_column

_TS = sa.DateTime(timezone=True)


class Officer(SQLModel, table=True):
    """Who carries a handheld, their unit and beat; the latest trusted fix."""

    device: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=64)
    badge: str = Field(default="", max_length=32)
    unit: str = Field(default="", index=True, max_length=64)
    leader: bool = False
    beat_id: int | None = Field(default=None, index=True)
    lat: float | None = None
    lon: float | None = None
    fix_ts: datetime | None = Field(default=None, sa_type=_TS)
    speed_mps: float = 0.0
    battery: float | None = None
    watch: dict[str, Any] = json_column(default_factory=dict)


class Position(SQLModel, table=True):
    """One trusted fix of a handheld (playback and reports)."""

    __table_args__ = (sa.Index("ix_position_device_ts", "device", "fix_ts"),)

    id: int | None = Field(default=None, primary_key=True)
    device: str = Field(max_length=64)
    fix_ts: datetime = Field(sa_type=_TS)
    lat: float
    lon: float
    speed_mps: float = 0.0
    course: float | None = None
    hdop: float | None = None
    accuracy_m: float | None = None
    source: str = Field(default="gnss", max_length=16)
    sos: bool = False


class Beat(SQLModel, table=True):
    """A patrol beat: polygon (GeoJSON, lon/lat), shifts and edge buffer."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    unit: str = Field(default="", max_length=64)
    geometry: dict[str, Any] = json_column()
    shifts: list[dict[str, Any]] = json_column(default_factory=list)
    buffer_m: float = 30.0
    updated_at: datetime = Field(sa_type=_TS)


class Alarm(SQLModel, table=True):
    """An SOS or a beat/stationary alarm, with its whole timeline."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=80)  # sos_id, or kind:device:time
    kind: str = Field(index=True, max_length=16)
    device: str = Field(index=True, max_length=64)
    state: str = Field(index=True, max_length=16)
    lat: float | None = None
    lon: float | None = None
    raised_at: datetime = Field(sa_type=_TS)
    received_at: datetime = Field(sa_type=_TS)
    delayed: bool = False
    acknowledged_at: datetime | None = Field(default=None, sa_type=_TS)
    acknowledged_by: str = Field(default="", max_length=64)
    assigned_at: datetime | None = Field(default=None, sa_type=_TS)
    responders: list[str] = json_column(default_factory=list)
    closed_at: datetime | None = Field(default=None, sa_type=_TS)
    closed_by: str = Field(default="", max_length=64)
    note: str = Field(default="", max_length=500)
    escalated_at: datetime | None = Field(default=None, sa_type=_TS)
    last_alert_at: datetime | None = Field(default=None, sa_type=_TS)
    repeats: int = 0
    alerted: list[dict[str, Any]] = json_column(default_factory=list)
    detail: dict[str, Any] = json_column(default_factory=dict)


class Message(SQLModel, table=True):
    """A message from command to one officer, a unit or all."""

    id: str = Field(primary_key=True, max_length=64)
    sender: str = Field(max_length=64)
    text: str = Field(max_length=500)
    audience: str = Field(max_length=8)  # one | group | all
    target: str = Field(default="", max_length=64)
    priority: str = Field(default="normal", max_length=8)
    created_at: datetime = Field(sa_type=_TS)


class Receipt(SQLModel, table=True):
    """One recipient of a message or an alert: sent, received, acknowledged."""

    message_id: str = Field(primary_key=True, max_length=80)
    device: str = Field(primary_key=True, max_length=64)
    sent_at: datetime = Field(sa_type=_TS)
    received_at: datetime | None = Field(default=None, sa_type=_TS)
    acked_at: datetime | None = Field(default=None, sa_type=_TS)


class OsmandKey(SQLModel, table=True):
    """The secret identifier a phone's OsmAnd / Traccar Client sends as ``id``.

    Only its SHA-256 is kept: whoever holds the identifier speaks for the
    handheld (positions and SOS), so it is shown once when issued.
    """

    device: str = Field(primary_key=True, max_length=64)
    key_sha256: str = Field(unique=True, max_length=64)
    issued_at: datetime = Field(sa_type=_TS)
    issued_by: str = Field(max_length=64)
