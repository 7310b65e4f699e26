"""The signal tables: junctions (what the engine needs to know) and plans.

Created by Alembic migration 0010.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from central.models import json_column

_TS = sa.DateTime(timezone=True)


class JunctionRow(SQLModel, table=True):
    """A signalised junction: its cabinet, its corridor, its detectors.

    ``detectors`` maps a detector node to its lanes: ``{"det-1": {"1": [0,
    1800, "W"], …}}`` — lane → [stage index, saturation flow veh/h, and
    optionally its approach and whether its turn also goes permissively in
    another stage]; lanes of one approach feeding one stage are
    summed into one lane group, and the stage's critical flow ratio is the
    largest among its groups.
    """

    __tablename__ = "junction"

    id: str = Field(primary_key=True, max_length=64)  # the cabinet's device id
    name: str = Field(default="", max_length=100)
    corridor: str = Field(default="", index=True, max_length=64)
    position_m: float = 0.0  # along its corridor
    stages: int = 4
    detectors: dict[str, Any] = json_column(default_factory=dict)
    adaptive: bool = False
    speed_mps: float = 13.9  # progression speed on the corridor


class PlanRow(SQLModel, table=True):
    """A timing plan: computed, pushed, and what the cabinet did with it."""

    __tablename__ = "signal_plan"

    id: int | None = Field(default=None, primary_key=True)
    junction: str = Field(index=True, max_length=64)
    version: str = Field(unique=True, max_length=64)
    body: dict[str, Any] = json_column(default_factory=dict)
    method: str = Field(
        max_length=32
    )  # webster|optimise|green_wave|adaptive|rollback|manual
    # proposed → pushed → accepted → applied | refused | failed
    state: str = Field(default="proposed", max_length=16)
    reason: str = Field(default="", max_length=300)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=_TS)
    updated_at: datetime = Field(sa_type=_TS)
