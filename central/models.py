"""Central's tables (SQLModel).

Alembic migrations in ``central/migrations`` create them; queries live with
the services that need them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def json_column(**kw: Any) -> Any:  # noqa: ANN401 - a SQLModel field definition
    """A non-null JSON column (lists and dicts in the services' tables)."""
    return Field(sa_column=sa.Column(sa.JSON, nullable=False), **kw)


ROLES = ("admin", "traffic", "police", "complaints", "department", "technician")


class Device(SQLModel, table=True):
    """A node in the registry, kept current from its state messages."""

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(index=True, max_length=32)
    site: str = Field(default="", index=True, max_length=64)
    lat: float | None = None
    lon: float | None = None
    groups: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    version: str = Field(default="", max_length=64)
    online: bool = Field(default=False, index=True)
    last_seen: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    health_status: str = Field(default="unknown", max_length=16)
    health: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    desired_version: str = Field(default="", max_length=64)
    reported_version: str = Field(default="", max_length=64)
    config_status: str = Field(default="none", max_length=16)
    config_reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    retired_at: datetime | None = Field(
        default=None, sa_type=sa.DateTime(timezone=True)
    )


class Event(SQLModel, table=True):
    """An event from a node, stored exactly once by its envelope id."""

    seq: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
    )
    id: str = Field(unique=True, max_length=36)
    device: str = Field(index=True, max_length=64)
    type: str = Field(max_length=64)
    ts: datetime = Field(sa_type=sa.DateTime(timezone=True))
    received_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    body: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )


class Operator(SQLModel, table=True):
    """A person who logs in to the consoles."""

    username: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    scope: list[str] = Field(
        default_factory=lambda: ["*"], sa_column=sa.Column(sa.JSON, nullable=False)
    )
    active: bool = True
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    # Raised on every change that must end the operator's sessions (disable,
    # role, scope, password); access tokens carry the value they were issued
    # under and are refused once it differs.
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class OperatorSession(SQLModel, table=True):
    """One login: the family of refresh tokens rotated from it."""

    id: str = Field(primary_key=True, max_length=32)
    username: str = Field(foreign_key="operator.username", index=True, max_length=64)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = Field(
        default=None, sa_type=sa.DateTime(timezone=True)
    )
    revoked_why: str = Field(default="", max_length=32)
    address: str = Field(default="", max_length=64)


class RefreshToken(SQLModel, table=True):
    """One refresh token of a session (only its SHA-256 kept); used once."""

    sha256: str = Field(primary_key=True, max_length=64)
    session_id: str = Field(foreign_key="operatorsession.id", index=True, max_length=32)
    issued_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class StreamTicket(SQLModel, table=True):
    """A single-use, short-lived ticket that opens one event stream."""

    sha256: str = Field(primary_key=True, max_length=64)
    session_id: str = Field(foreign_key="operatorsession.id", index=True, max_length=32)
    username: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class LoginThrottle(SQLModel, table=True):
    """Failed logins of one account or one address within the current window."""

    key: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    window_start: datetime = Field(sa_type=sa.DateTime(timezone=True))
    locked_until: datetime | None = Field(
        default=None, sa_type=sa.DateTime(timezone=True), index=True
    )
    lockouts: int = 0


class PolicyLayer(SQLModel, table=True):
    """One version of one policy document (fleet, kind, site, group or device)."""

    __table_args__ = (sa.UniqueConstraint("scope", "target", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(index=True, max_length=16)
    target: str = Field(index=True, max_length=64)
    version: int
    values: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    author: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


def as_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; SQLite hands back naive UTC times."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AuditRecord(SQLModel, table=True):
    """One link of the hash-chained audit log (append-only)."""

    seq: int = Field(primary_key=True)
    ts: datetime = Field(sa_type=sa.DateTime(timezone=True))
    actor: str = Field(index=True, max_length=64)
    action: str = Field(index=True, max_length=64)
    target: str = Field(default="", index=True, max_length=128)
    detail: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """A signed head of the audit chain."""

    seq: int = Field(primary_key=True)
    hash: str = Field(max_length=64)
    signature: str = Field(max_length=256)


class EnrolmentCode(SQLModel, table=True):
    """A one-time code bound to a kind, a site and the device id it will enrol."""

    code_hash: str = Field(primary_key=True, max_length=64)
    device_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    site: str = Field(default="", max_length=64)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class Certificate(SQLModel, table=True):
    """A certificate the fleet CA issued, and its revocation."""

    serial: str = Field(primary_key=True, max_length=64)  # hex; too big for BIGINT
    device_id: str = Field(index=True, max_length=64)
    issued_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    not_after: datetime = Field(sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = Field(
        default=None, sa_type=sa.DateTime(timezone=True)
    )
