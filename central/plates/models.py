"""The plate service's tables: suspects, sightings, hits, violations.

Created by Alembic migration 0007; queries live in :mod:`central.plates.service`
and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from central.models import json_column

_TS = sa.DateTime(timezone=True)


class Suspect(SQLModel, table=True):
    """A plate on the suspect list (嫌疑车牌库), in force for a period."""

    id: int | None = Field(default=None, primary_key=True)
    plate: str = Field(index=True, max_length=16)
    category: str = Field(index=True, max_length=32)
    note: str = Field(default="", max_length=500)
    valid_from: datetime = Field(sa_type=_TS)
    valid_until: datetime | None = Field(default=None, sa_type=_TS)
    added_by: str = Field(max_length=64)
    added_at: datetime = Field(sa_type=_TS)


class Sighting(SQLModel, table=True):
    """One vehicle read by a camera: where, when, what, and its evidence."""

    __table_args__ = (sa.Index("ix_sighting_plate_seen", "plate", "seen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    read_id: str = Field(unique=True, max_length=64)
    device: str = Field(index=True, max_length=64)
    plate: str = Field(max_length=16)
    confidence: float
    colour: str = Field(max_length=8)
    seen_at: datetime = Field(sa_type=_TS, index=True)
    received_at: datetime = Field(sa_type=_TS)
    frames: int = 1
    lat: float | None = None
    lon: float | None = None
    alternatives: list[dict[str, Any]] = json_column(default_factory=list)
    evidence: dict[str, Any] = json_column(
        default_factory=dict
    )  # hashes, digest, trust
    hit: bool = Field(default=False, index=True)


class Hit(SQLModel, table=True):
    """A sighting that matched the list: exact (an alarm) or possible (to confirm)."""

    id: int | None = Field(default=None, primary_key=True)
    sighting_id: int = Field(index=True)
    suspect_id: int = Field(index=True)
    read: str = Field(max_length=16)
    listed: str = Field(max_length=16)
    category: str = Field(max_length=32)
    kind: str = Field(max_length=8)  # exact | possible
    score: float
    state: str = Field(index=True, max_length=12)  # open | confirmed | rejected
    alarm_id: int | None = None
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=_TS)
    created_at: datetime = Field(sa_type=_TS)


class Violation(SQLModel, table=True):
    """A red-light crossing captured at a junction, with its evidence."""

    id: int | None = Field(default=None, primary_key=True)
    violation_id: str = Field(unique=True, max_length=64)
    device: str = Field(index=True, max_length=64)
    plate: str = Field(max_length=16)
    junction: str = Field(max_length=64)
    signal_group: str = Field(max_length=32)
    red_since: datetime = Field(sa_type=_TS)
    crossed_at: datetime = Field(sa_type=_TS, index=True)
    received_at: datetime = Field(sa_type=_TS)
    evidence: dict[str, Any] = json_column(default_factory=dict)
