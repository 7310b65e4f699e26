"""The OTA tables: rollouts, their nodes, and pinned devices.

Created by Alembic migration 0009.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from central.models import json_column

_TS = sa.DateTime(timezone=True)


class RolloutRow(SQLModel, table=True):
    """A release going out to a set of devices in waves."""

    __tablename__ = "rollout"

    id: int | None = Field(default=None, primary_key=True)
    release: str = Field(max_length=128)
    version: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    selector: dict[str, Any] = json_column(default_factory=dict)
    plan: dict[str, Any] = json_column(default_factory=dict)
    waves: list[list[str]] = json_column(default_factory=list)
    state: str = Field(
        default="running", index=True, max_length=16
    )  # running|paused|cancelled|done
    reason: str = Field(default="", max_length=200)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=_TS)
    updated_at: datetime = Field(sa_type=_TS)


class RolloutNode(SQLModel, table=True):
    """One device in a rollout and where it stands."""

    rollout_id: int = Field(primary_key=True)
    device: str = Field(primary_key=True, max_length=64)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    assigned_at: datetime | None = Field(default=None, sa_type=_TS)
    reason: str = Field(default="", max_length=200)
    fw_state: str = Field(default="", max_length=32)  # the node's last report
    updated_at: datetime | None = Field(default=None, sa_type=_TS)


class Pin(SQLModel, table=True):
    """A device held at its version: no rollout touches it."""

    device: str = Field(primary_key=True, max_length=64)
    note: str = Field(default="", max_length=200)
    by: str = Field(max_length=64)
    at: datetime = Field(sa_type=_TS)
