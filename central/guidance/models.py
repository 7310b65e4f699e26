"""The guidance tables: links, hashed passages, travel times, incidents, OD counts.

Created by Alembic migrations 0014 and 0015; the service keeps them
(:mod:`central.guidance.service`), the API reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from central.models import json_column

_TS = sa.DateTime(timezone=True)


class GuidanceLink(SQLModel, table=True):
    """A road link whose travel time is measured, and its detectors.

    ``origin``/``destination`` are the cameras at its ends ('' where it has
    none); ``loops`` the station pairs along it, each ``{"up": device,
    "down": device, "lanes": [1, 2]}`` (the detector nodes' lane numbers,
    through lanes only); ``state`` what the detectors carry from one minute
    to the next (California #7's lane states, the travel-time watch).
    """

    __tablename__ = "guidance_link"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=100)
    site: str = Field(default="*", max_length=64)
    origin: str = Field(default="", index=True, max_length=64)
    destination: str = Field(default="", index=True, max_length=64)
    length_m: float = 0.0
    free_flow_s: float = 0.0
    lat: float | None = None
    lon: float | None = None
    loops: list[dict[str, Any]] = json_column(default_factory=list)
    state: dict[str, Any] = json_column(default_factory=dict)
    computed_until: datetime | None = Field(default=None, sa_type=_TS)


class Passage(SQLModel, table=True):
    """A vehicle at a camera of a link: only its plate's keyed hash, for hours."""

    __tablename__ = "guidance_passage"
    __table_args__ = (sa.Index("ix_guidance_passage_camera_at", "camera", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    read_id: str = Field(unique=True, max_length=64)
    camera: str = Field(max_length=64)
    plate_hash: str = Field(max_length=32)
    at: datetime = Field(sa_type=_TS, index=True)


class TravelTime(SQLModel, table=True):
    """A link's travel time in one minute (by arrival), with its confidence."""

    __tablename__ = "guidance_travel_time"

    link: str = Field(primary_key=True, max_length=64)
    minute: datetime = Field(primary_key=True, sa_type=_TS)
    seconds: float
    sd: float
    samples: int
    source: str = Field(max_length=8)  # camera | loops | fused
    confidence: float


class Incident(SQLModel, table=True):
    """An incident a detector found: where, by what evidence, and its fate.

    ``state``: raised → confirmed | dismissed; raised/confirmed → cleared
    when the detector sees traffic normal again. ``alarm`` is the police
    alarm raised with it (the police console's).
    """

    __tablename__ = "guidance_incident"

    id: int | None = Field(default=None, primary_key=True)
    link: str = Field(index=True, max_length=64)
    source: str = Field(max_length=16)  # loops | travel_time
    lane: int | None = None
    state: str = Field(default="raised", index=True, max_length=16)
    raised_at: datetime = Field(sa_type=_TS)
    evidence: dict[str, Any] = json_column(default_factory=dict)
    alarm: int | None = None
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=_TS)
    cleared_at: datetime | None = Field(default=None, sa_type=_TS)
    note: str = Field(default="", max_length=500)


class ODCount(SQLModel, table=True):
    """Journeys between two cameras that began in one hour (read vehicles)."""

    __tablename__ = "guidance_od"

    hour: datetime = Field(primary_key=True, sa_type=_TS)
    origin: str = Field(primary_key=True, max_length=64)
    destination: str = Field(primary_key=True, max_length=64)
    trips: int
