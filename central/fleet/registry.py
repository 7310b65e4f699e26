"""The device registry: register, change, list and show devices.

Kept current by the ingest worker from state messages and last wills; this
module holds the queries the API needs. Publishing is left to the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from central.errors import ConflictError, InvalidError, NotFoundError
from central.models import Device, Event, as_utc
from edge.protocol import topics
from edge.protocol.messages import KIND_CONFIG

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime


def register(
    session: Session,
    *,
    device_id: str,
    kind: str,
    site: str = "",
    groups: list[str] | None = None,
    lat: float | None = None,
    lon: float | None = None,
    now: datetime,
) -> Device:
    """Add a device to the registry.

    Raises:
        ConflictError: the id is taken.
        InvalidError: a bad id or an unknown kind.
    """
    topics.check_device_id(device_id)
    if kind not in KIND_CONFIG:
        raise InvalidError(f"expected a kind of {sorted(KIND_CONFIG)}, got {kind!r}")
    if session.get(Device, device_id) is not None:
        raise ConflictError(f"device {device_id!r} is already registered")
    device = Device(
        id=device_id,
        kind=kind,
        site=site,
        groups=sorted(set(groups or [])),
        lat=lat,
        lon=lon,
        created_at=now,
    )
    session.add(device)
    session.commit()
    session.refresh(device)
    return device


def get(session: Session, device_id: str) -> Device:
    """Return one device.

    Raises:
        NotFoundError: no such device.
    """
    device = session.get(Device, device_id)
    if device is None:
        raise NotFoundError(f"no device {device_id!r}")
    return device


def update(session: Session, device_id: str, changes: dict[str, Any]) -> Device:
    """Change a device's site, groups or location."""
    device = get(session, device_id)
    for key in ("site", "groups", "lat", "lon"):
        if key in changes and changes[key] is not None:
            value = sorted(set(changes[key])) if key == "groups" else changes[key]
            setattr(device, key, value)
    session.add(device)
    session.commit()
    session.refresh(device)
    return device


def search(
    session: Session,
    *,
    kind: str | None = None,
    site: str | None = None,
    online: bool | None = None,
    drift: bool | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
    kinds: Sequence[str] | None = None,
    sites: Sequence[str] | None = None,
) -> tuple[list[Device], int]:
    """List devices with server-side filters and pagination; return page and total.

    ``kinds`` and ``sites``, where given, bound what the caller may see at all
    (the permission matrix); ``None`` means no bound.
    """
    stmt = select(Device)
    if kinds is not None:
        stmt = stmt.where(col(Device.kind).in_(kinds))
    if sites is not None:
        stmt = stmt.where(col(Device.site).in_(sites))
    if kind:
        stmt = stmt.where(Device.kind == kind)
    if site:
        stmt = stmt.where(Device.site == site)
    if online is not None:
        stmt = stmt.where(Device.online == online)
    if drift is not None:
        drifted = sa.or_(
            col(Device.desired_version) != col(Device.reported_version),
            col(Device.config_status) == "refused",
        )
        stmt = stmt.where(drifted if drift else sa.not_(drifted))
    if q:
        stmt = stmt.where(col(Device.id).contains(q))
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(Device.id).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def view(device: Device) -> dict[str, Any]:
    """The JSON the API and console show for a device, drift included."""
    # After a commit the object is expired; reading a column reloads it before
    # pydantic reads its __dict__ (which would otherwise be empty).
    _ = device.id
    data = device.model_dump(mode="json")
    if device.last_seen is not None:
        data["last_seen"] = as_utc(device.last_seen).isoformat()
    data["created_at"] = as_utc(device.created_at).isoformat()
    data["drift"] = bool(device.desired_version) and (
        device.desired_version != device.reported_version
        or device.config_status == "refused"
    )
    return data


def events(
    session: Session, device_id: str, *, limit: int = 100, after: int = 0
) -> list[Event]:
    """Return a device's events in the order they were stored."""
    stmt = (
        select(Event)
        .where(Event.device == device_id, col(Event.seq) > after)
        .order_by(col(Event.seq))
        .limit(limit)
    )
    return list(session.exec(stmt).all())
