"""OTA: published releases, rollouts and their progress, pinned devices.

Scoped by the permission matrix (``ota``): a release is county-wide (only an
operator with county scope publishes one); a rollout belongs to its target
site (no site: the whole county) and a pin to its device's site. Rollout
thresholds above :data:`SANE` need an admin. Waves and verdicts are
:mod:`central.ota`'s.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlmodel import col, select

from central.api.deps import (
    RowId,
    Services,
    ServicesDep,
    SessionDep,
    check_scope,
    may,
    permit,
)
from central.errors import NotFoundError
from central.models import Device
from central.operators.auth import Principal
from central.ota.models import Pin, RolloutNode, RolloutRow
from central.ota.rollout import Plan
from central.ota.service import OtaService

router = APIRouter(prefix="/api/v1/ota", tags=["ota"])
Reader = Annotated[Principal, Depends(permit("ota", "read"))]
Writer = Annotated[Principal, Depends(permit("ota", "write"))]
Name = Annotated[str, Field(max_length=128)]
DeviceName = Annotated[str, PathParam(max_length=64)]
# The most a non-admin may set: beyond these a failing release spreads.
SANE: dict[str, float] = {
    "canary": 10,
    "growth": 4.0,
    "pause_at": 0.3,
    "cancel_at": 0.5,
    "retries": 3,
    "node_timeout_s": 4 * 3600,
    # The verdict waits for this many finished nodes: a huge sample never
    # pauses or cancels at all (red team 9).
    "min_sample": 10,
}


def _rollout_site(row: RolloutRow) -> str:
    return str(row.selector.get("site") or "*")


def _rollout(
    services: Services, session: SessionDep, who: Principal, rollout_id: int, act: str
) -> RolloutRow:
    row = session.get(RolloutRow, rollout_id)
    if row is None:
        raise NotFoundError(f"no rollout {rollout_id}")
    check_scope(services, who, site=_rollout_site(row), obj="ota", act=act)
    return row


def _pin_scope(
    services: Services, session: SessionDep, who: Principal, device: str
) -> None:
    row = session.get(Device, device)
    site = row.site if row is not None else "*"
    check_scope(services, who, site=site, obj="ota", act="write")


def ota(svc: ServicesDep) -> OtaService:
    """The OTA service, or 503 where this process has none."""
    if svc.ota is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "no OTA service configured"
        )
    return svc.ota


@router.get("/releases")
def releases(svc: ServicesDep, _p: Reader) -> list[dict[str, Any]]:
    """Releases in the image repository."""
    return ota(svc).releases()


class ReleaseIn(BaseModel):
    """A release to build from this installation's code and publish."""

    kind: str = Field(max_length=32)
    version: str = Field(max_length=64)
    min_from: str = Field(default="0", max_length=64)
    drill: bool = False


@router.post("/releases", status_code=status.HTTP_201_CREATED)
def publish_release(body: ReleaseIn, svc: ServicesDep, p: Writer) -> dict[str, Any]:
    """Build and sign a release (only where central holds the signing key).

    A release serves the whole county: only county scope may publish one.
    """
    check_scope(svc, p, site="*", obj="ota", act="write")
    try:
        release = ota(svc).publish(
            kind=body.kind,
            version=body.version,
            min_from=body.min_from,
            drill=body.drill,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    svc.audit.append(
        actor=p.username,
        action="release.publish",
        target=release["name"],
        detail=body.model_dump(),
        now=svc.clock.now(),
    )
    return release


class RolloutIn(BaseModel):
    """A rollout: what, to which devices, and how carefully."""

    release: Name
    version: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    site: str = Field(default="", max_length=64)
    group: str = Field(default="", max_length=64)
    from_version: str = Field(default="", max_length=64)
    canary: int = Field(default=2, ge=1, le=10_000)
    growth: float = Field(default=3.0, ge=1, le=100)
    min_sample: int = Field(default=2, ge=1, le=10_000)
    pause_at: float = Field(default=0.2, gt=0, le=1)
    cancel_at: float = Field(default=0.5, gt=0, le=1)
    node_timeout_s: float = Field(default=1800, gt=0, le=7 * 24 * 3600)
    retries: int = Field(default=1, ge=0, le=100)


@router.post("/rollouts", status_code=status.HTTP_201_CREATED)
def start(
    body: RolloutIn, session: SessionDep, svc: ServicesDep, p: Writer
) -> dict[str, Any]:
    """Start a rollout (audited); it proceeds wave by wave on its own.

    The target site must be in the caller's scope (no site: the county), and
    only an admin sets thresholds above :data:`SANE`.
    """
    check_scope(svc, p, site=body.site or "*", obj="ota", act="write")
    unsafe = {k: getattr(body, k) for k, top in SANE.items() if getattr(body, k) > top}
    if unsafe:
        check_scope(svc, p, site=body.site or "*", obj="ota/unsafe", act="write")
    service = ota(svc)
    plan = Plan(
        canary=body.canary,
        growth=body.growth,
        min_sample=body.min_sample,
        pause_at=body.pause_at,
        cancel_at=body.cancel_at,
        node_timeout_s=body.node_timeout_s,
        retries=body.retries,
    )
    row = service.start(
        session,
        release=body.release,
        version=body.version,
        kind=body.kind,
        site=body.site,
        group=body.group,
        from_version=body.from_version,
        plan=plan,
        by=p.username,
    )
    svc.audit.append(
        actor=p.username,
        action="rollout.start",
        target=body.release,
        detail=body.model_dump(),
        now=svc.clock.now(),
    )
    return service.view(session, row)


@router.get("/rollouts")
def list_rollouts(
    session: SessionDep, svc: ServicesDep, p: Reader
) -> list[dict[str, Any]]:
    """Rollouts in the caller's districts, newest first, with their progress."""
    service = ota(svc)
    rows = session.exec(
        select(RolloutRow).order_by(col(RolloutRow.id).desc()).limit(200)
    ).all()
    return [
        service.view(session, r)
        for r in rows
        if may(svc, p, site=_rollout_site(r), obj="ota", act="read")
    ][:50]


@router.get("/rollouts/{rollout_id}/nodes")
def rollout_nodes(
    rollout_id: RowId, session: SessionDep, svc: ServicesDep, p: Reader
) -> list[dict[str, Any]]:
    """Every node of a rollout: its wave state and its last report."""
    _rollout(svc, session, p, rollout_id, "read")
    rows = session.exec(
        select(RolloutNode)
        .where(RolloutNode.rollout_id == rollout_id)
        .order_by(col(RolloutNode.device))
    ).all()
    return [OtaService.node_view(n) for n in rows]


@router.get("/pins")
def pins(session: SessionDep, svc: ServicesDep, p: Reader) -> list[dict[str, Any]]:
    """Devices held at their version, in the caller's districts."""
    rows = session.exec(select(Pin).order_by(col(Pin.device))).all()
    sites = {d.id: d.site for d in session.exec(select(Device)).all()}
    return [
        {"device": r.device, "note": r.note, "by": r.by, "at": r.at}
        for r in rows
        if may(svc, p, site=sites.get(r.device, "*"), obj="ota", act="read")
    ]


@router.post("/rollouts/{rollout_id}/{action}")
def control(
    rollout_id: RowId,
    action: Literal["pause", "resume", "cancel"],
    session: SessionDep,
    svc: ServicesDep,
    p: Writer,
) -> dict[str, Any]:
    """Pause, resume or cancel a rollout by hand (audited)."""
    row = _rollout(svc, session, p, rollout_id, "write")
    row.state = {"pause": "paused", "resume": "running", "cancel": "cancelled"}[action]
    row.reason = f"{action} by {p.username}"
    session.commit()
    svc.audit.append(
        actor=p.username,
        action=f"rollout.{action}",
        target=row.release,
        detail={"rollout": rollout_id},
        now=svc.clock.now(),
    )
    return ota(svc).view(session, row)


class PinIn(BaseModel):
    """Why a device is held at its version."""

    note: str = Field(default="", max_length=200)


@router.put("/pins/{device}")
def pin(
    device: DeviceName, body: PinIn, session: SessionDep, svc: ServicesDep, p: Writer
) -> dict[str, Any]:
    """Hold a device at its version: no rollout will touch it (audited)."""
    _pin_scope(svc, session, p, device)
    row = session.get(Pin, device) or Pin(
        device=device, by=p.username, at=svc.clock.now()
    )
    row.note = body.note
    session.add(row)
    session.commit()
    svc.audit.append(
        actor=p.username,
        action="ota.pin",
        target=device,
        detail={"note": body.note},
        now=svc.clock.now(),
    )
    return {"device": device, "note": body.note}


@router.delete("/pins/{device}")
def unpin(
    device: DeviceName, session: SessionDep, svc: ServicesDep, p: Writer
) -> dict[str, Any]:
    """Release a pin (audited)."""
    _pin_scope(svc, session, p, device)
    row = session.get(Pin, device)
    if row is None:
        raise NotFoundError(f"{device} is not pinned")
    session.delete(row)
    session.commit()
    svc.audit.append(
        actor=p.username, action="ota.unpin", target=device, now=svc.clock.now()
    )
    return {"device": device}
