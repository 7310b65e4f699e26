"""The complaints service's tables.

Request types, departments, complaints and their steps, kiosk content,
appointments and the working-day overrides.

Created by Alembic migration 0008; queries live in the service and the API.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from central.models import json_column

_TS = sa.DateTime(timezone=True)


class Department(SQLModel, table=True):
    """A department complaints are passed to (转办), its head and staff."""

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    head: str = Field(default="", max_length=64)  # the operator told on escalation
    members: list[str] = json_column(
        default_factory=list
    )  # operators of role department


class ServiceType(SQLModel, table=True):
    """A kind of request (Open311 service): its department and time limit."""

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=500)
    group: str = Field(default="投诉", max_length=16)
    department: str = Field(default="", max_length=32)
    limit_days: int = 5  # working days from receipt to reply


class Complaint(SQLModel, table=True):
    """One complaint or report, and where it is in the loop."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=16)  # 查询码, printed on the receipt
    token: str = Field(unique=True, max_length=40)  # Open311 token
    service_code: str = Field(index=True, max_length=32)
    description: str = Field(max_length=4000)  # GeoReport v2's limit
    place: str = Field(default="", max_length=200)
    address_id: str = Field(default="", max_length=64)  # Open311 clients' own
    media_url: str = Field(default="", max_length=1000)  # a photo of the problem
    # Listed by Open311 (anonymised); only Open311 filings are (see open311.py).
    public: bool = False
    lat: float | None = None
    lon: float | None = None
    real_name: bool = False
    name: str = Field(default="", max_length=64)
    phone: str = Field(default="", max_length=32)
    email: str = Field(default="", max_length=128)
    state: str = Field(default="pending", index=True, max_length=16)
    department: str = Field(default="", index=True, max_length=32)
    source: str = Field(default="kiosk", max_length=16)
    device: str = Field(default="", max_length=64)
    received_at: datetime = Field(sa_type=_TS, index=True)
    accepted_at: datetime | None = Field(default=None, sa_type=_TS)
    due_at: datetime | None = Field(default=None, sa_type=_TS)
    extended: bool = False
    replied_at: datetime | None = Field(default=None, sa_type=_TS)
    reply: str = Field(default="", max_length=2000)
    closed_at: datetime | None = Field(default=None, sa_type=_TS)
    rating: int | None = None  # 1..5, from the citizen
    rated_at: datetime | None = Field(default=None, sa_type=_TS)
    updated_at: datetime = Field(sa_type=_TS)


class ComplaintStep(SQLModel, table=True):
    """One transition of a complaint, timestamped."""

    id: int | None = Field(default=None, primary_key=True)
    complaint_id: int = Field(index=True)
    action: str = Field(max_length=16)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    note: str = Field(default="", max_length=2000)
    at: datetime = Field(sa_type=_TS)


class ContentItem(SQLModel, table=True):
    """Kiosk content: a notice, a process guide, a place or a utility item."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=16)  # notice | guide | place | utility
    title: str = Field(max_length=120)
    body: str = Field(default="", max_length=5000)
    extra: dict[str, Any] = json_column(default_factory=dict)
    updated_at: datetime = Field(sa_type=_TS)


class Slot(SQLModel, table=True):
    """An appointment slot at a service centre, with its capacity."""

    id: int | None = Field(default=None, primary_key=True)
    centre: str = Field(max_length=64)
    service: str = Field(index=True, max_length=64)
    starts_at: datetime = Field(sa_type=_TS, index=True)
    capacity: int = 10
    booked: int = 0


class Booking(SQLModel, table=True):
    """A citizen's appointment."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=16)
    slot_id: int = Field(index=True)
    name: str = Field(max_length=64)
    phone: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=_TS)


class CalendarOverride(SQLModel, table=True):
    """A day that is (or is not) a working day, whatever the calendar says."""

    day: date = Field(primary_key=True)
    workday: bool
    note: str = Field(default="", max_length=100)
