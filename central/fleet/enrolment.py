"""Enrolment: one-time codes → a node's certificate, identity and settings.

A technician asks for a code bound to a kind, a site and a device id; the
node shows the code once to learn who it will be, then sends its CSR (its
key never leaves it) and gets its certificate chain, the CA bundle, where
the broker is, which command key to trust and its first configuration. Each
failure says what to do. HTTP is :mod:`central.api.enrolment`'s.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from central.errors import InvalidError
from central.fleet import registry
from central.models import Certificate, Device, EnrolmentCode, PolicyLayer, as_utc
from edge.protocol import topics
from provisioning.codes import CodeError, CodeState, check_usable, code_hash, new_code
from provisioning.identity import check_node_identity

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from provisioning.ca import FleetCA, Issued

MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Enrolled:
    """What a node receives when its enrolment succeeds."""

    device_id: str
    kind: str
    site: str
    issued: Issued


def create_code(
    session: Session,
    *,
    kind: str,
    site: str,
    created_by: str,
    now: datetime,
    ttl: timedelta = timedelta(hours=24),
    device_id: str | None = None,
) -> tuple[str, EnrolmentCode]:
    """Issue a code; return it (shown once) and its stored row.

    Raises:
        IdentityError: the device id is a reserved service name (``central…``,
            ``svc-…``) or not a plain device id.
        InvalidError: the device is already registered.
    """
    device_id = device_id or f"{kind.replace('_', '-')}-{secrets.token_hex(3)}"
    topics.check_device_id(device_id)
    check_node_identity(device_id)
    if session.get(Device, device_id) is not None:
        raise InvalidError(f"device {device_id!r} is already registered; use replace")
    code = new_code()
    row = EnrolmentCode(
        code_hash=code_hash(code),
        device_id=device_id,
        kind=kind,
        site=site,
        created_by=created_by,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return code, row


def open_code(session: Session, device_id: str, *, now: datetime) -> bool:
    """Whether an unused, unexpired enrolment code names ``device_id``."""
    rows = session.exec(
        select(EnrolmentCode).where(
            EnrolmentCode.device_id == device_id, col(EnrolmentCode.used_at).is_(None)
        )
    ).all()
    return any(as_utc(row.expires_at) > now for row in rows)


def look_up(session: Session, code: str, *, now: datetime) -> EnrolmentCode:
    """The code's row if it can still be used.

    Raises:
        CodeError: malformed, unknown, used or expired, with advice.
    """
    row = session.get(EnrolmentCode, code_hash(code))
    state = None
    if row is not None:
        used = as_utc(row.used_at) if row.used_at else None
        state = CodeState(expires_at=as_utc(row.expires_at), used_at=used)
    check_usable(state, now=now)
    assert row is not None  # noqa: S101 - check_usable raised otherwise
    return row


def enrol(
    session: Session,
    ca: FleetCA,
    *,
    code: str,
    csr_pem: bytes,
    client_time: datetime,
    now: datetime,
) -> Enrolled:
    """Consume a code and issue the node's certificate.

    Raises:
        CodeError: bad code, or the node's clock too far from central's.
        CAError: the CSR is not for the device the code names, or the code
            names a reserved service identity (the CA refuses to mint it).
    """
    skew = abs(as_utc(client_time) - now)
    if skew > MAX_SKEW:
        raise CodeError(
            f"this node's clock says {as_utc(client_time).isoformat()}, central's says "
            f"{now.isoformat()}; set the time (NTP or by hand) and try again",
            reason="clock",
        )
    row = look_up(session, code, now=now)
    existing = session.get(Device, row.device_id)
    if existing is not None and (
        existing.retired_at is not None
        or (existing.kind, existing.site) != (row.kind, row.site)
    ):  # registered by someone else since the code was made: never adopt it
        raise CodeError(
            f"expected device {row.device_id!r} to be free or a {row.kind} at site "
            f"{row.site or '-'!r}, got a registered {existing.kind} at "
            f"{existing.site or '-'!r}; ask for a new code",
            reason="taken",
        )
    issued = ca.issue(csr_pem, common_name=row.device_id, now=now)
    row.used_at = now
    session.add(row)
    if session.get(Device, row.device_id) is None:
        session.add(
            Device(id=row.device_id, kind=row.kind, site=row.site, created_at=now)
        )
    session.add(
        Certificate(
            serial=format(issued.serial, "x"),
            device_id=row.device_id,
            issued_at=now,
            not_after=issued.not_after,
        )
    )
    session.commit()
    return Enrolled(
        device_id=row.device_id, kind=row.kind, site=row.site, issued=issued
    )


def revoke(session: Session, device_id: str, *, now: datetime) -> list[int]:
    """Revoke every live certificate of a device; return their serials."""
    registry.get(session, device_id)
    rows = session.exec(
        select(Certificate).where(Certificate.device_id == device_id)
    ).all()
    serials = []
    for row in rows:
        if row.revoked_at is None:
            row.revoked_at = now
            session.add(row)
            serials.append(int(row.serial, 16))
    session.commit()
    return serials


def retire(
    session: Session, ca: FleetCA, device_id: str, *, now: datetime, crl_path: Path
) -> list[int]:
    """Retire a device: revoke its certificates, write the CRL, stop its ingest.

    The broker refuses the device's next connect once it has re-read
    ``crl_path`` (Mosquitto 2.0.11 does on SIGHUP); ending a session that is
    already connected is :meth:`central.fleet.broker_access.BrokerAccess.eject`'s.
    """
    serials = revoke(session, device_id, now=now)
    device = registry.get(session, device_id)
    device.retired_at = now
    device.online = False
    session.add(device)
    session.commit()
    write_crl(session, ca, now=now, path=crl_path)
    return serials


def replace(
    session: Session,
    ca: FleetCA,
    old_id: str,
    new_id: str,
    *,
    now: datetime,
    crl_path: Path,
) -> Device:
    """Move a swapped node's site, groups, place and device policy to its successor."""
    old, new = registry.get(session, old_id), registry.get(session, new_id)
    if new_id == old_id or new.retired_at is not None:
        raise InvalidError(
            f"expected a live successor other than {old_id}, got {new_id!r}"
            f"{' (retired)' if new.retired_at is not None else ''}"
        )
    if old.kind != new.kind:
        raise InvalidError(
            f"expected a {old.kind} to replace {old_id}, got a {new.kind}"
        )
    new.site, new.groups, new.lat, new.lon = (
        old.site,
        list(old.groups),
        old.lat,
        old.lon,
    )
    session.add(new)
    layer = session.exec(
        select(PolicyLayer)
        .where(PolicyLayer.scope == "device", PolicyLayer.target == old_id)
        .order_by(col(PolicyLayer.version).desc())
    ).first()
    if layer is not None:
        session.add(
            PolicyLayer(
                scope="device",
                target=new_id,
                version=_next_version(session, new_id),
                values=dict(layer.values),
                author="replace",
                created_at=now,
            )
        )
    session.commit()
    retire(session, ca, old_id, now=now, crl_path=crl_path)
    fresh = registry.get(session, new_id)
    session.refresh(fresh)  # the commits above expired it
    return fresh


def _next_version(session: Session, device_id: str) -> int:
    rows = session.exec(
        select(PolicyLayer.version).where(
            PolicyLayer.scope == "device", PolicyLayer.target == device_id
        )
    ).all()
    return max(rows, default=0) + 1


def write_crl(session: Session, ca: FleetCA, *, now: datetime, path: Path) -> None:
    """Write the CRL of every revoked certificate, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(ca.crl(revoked(session), now=now))
    tmp.replace(path)


def revoked(session: Session) -> list[tuple[int, datetime]]:
    """Every revoked serial and when, for the CRL."""
    rows = session.exec(select(Certificate)).all()
    return [(int(r.serial, 16), as_utc(r.revoked_at)) for r in rows if r.revoked_at]
