"""Devices: the registry, their events, desired vs reported config, commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from central import enrolment, registry, twin
from central.api.deps import (
    MAX_ROW,
    PrincipalDep,
    ServicesDep,
    SessionDep,
    check_scope,
    fleet_ca,
    refusal,
    require,
)
from central.auth import Principal
from central.models import as_utc
from central.policy import desired_config

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

Technician = Annotated[Principal, Depends(require("technician"))]


class DeviceIn(BaseModel):
    """A device to register."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    kind: str
    site: str = ""
    groups: list[str] = Field(default_factory=list)
    lat: float | None = None
    lon: float | None = None


class DevicePatch(BaseModel):
    """Changes to a device's placement."""

    site: str | None = None
    groups: list[str] | None = None
    lat: float | None = None
    lon: float | None = None


class CommandIn(BaseModel):
    """Arguments of a remote command."""

    args: dict[str, Any] = Field(default_factory=dict)
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0


@router.get("")
def list_devices(
    session: SessionDep,
    _p: PrincipalDep,
    kind: str | None = None,
    site: str | None = None,
    online: bool | None = None,
    drift: bool | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
) -> dict[str, Any]:
    """List devices, filtered and paginated on the server."""
    rows, total = registry.search(
        session,
        kind=kind,
        site=site,
        online=online,
        drift=drift,
        q=q,
        limit=limit,
        offset=offset,
    )
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [registry.view(d) for d in rows],
    }


@router.post("", status_code=status.HTTP_201_CREATED)
def register_device(
    body: DeviceIn, services: ServicesDep, session: SessionDep, who: Technician
) -> dict[str, Any]:
    """Register a device and publish its desired configuration."""
    check_scope(services, who, site=body.site, obj="devices", act="register")
    device = registry.register(
        session,
        device_id=body.id,
        kind=body.kind,
        site=body.site,
        groups=body.groups,
        lat=body.lat,
        lon=body.lon,
        now=services.clock.now(),
    )
    services.audit.append(
        actor=who.username,
        action="device.register",
        target=device.id,
        detail=body.model_dump(),
        now=services.clock.now(),
    )
    if services.link is not None:
        twin.reconcile(session, services.link, only=[device.id])
    return registry.view(registry.get(session, device.id))


@router.get("/{device_id}")
def get_device(device_id: str, session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    """One device."""
    return registry.view(registry.get(session, device_id))


@router.patch("/{device_id}")
def patch_device(
    device_id: str,
    body: DevicePatch,
    services: ServicesDep,
    session: SessionDep,
    who: Technician,
) -> dict[str, Any]:
    """Move a device to another site or groups; its configuration follows."""
    changes = body.model_dump(exclude_unset=True)
    check_scope(
        services,
        who,
        site=registry.get(session, device_id).site,
        obj="devices",
        act="update",
    )
    if changes.get("site") is not None:
        check_scope(services, who, site=changes["site"], obj="devices", act="update")
    registry.update(session, device_id, changes)
    services.audit.append(
        actor=who.username,
        action="device.update",
        target=device_id,
        detail=changes,
        now=services.clock.now(),
    )
    if services.link is not None:
        twin.reconcile(session, services.link, only=[device_id])
    return registry.view(registry.get(session, device_id))


@router.get("/{device_id}/config")
def get_config(device_id: str, session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    """Desired configuration, its sources, and what the node reports."""
    device = registry.get(session, device_id)
    desired = desired_config(twin.current_layers(session), twin.facts(device))
    view = registry.view(device)
    return {
        "device": device_id,
        "desired": {
            "version": desired.version,
            "values": desired.values,
            "sources": list(desired.sources),
        },
        "reported": {
            "version": device.reported_version,
            "status": device.config_status,
            "reason": device.config_reason,
        },
        "drift": view["drift"],
    }


@router.get("/{device_id}/events")
def list_events(
    device_id: str,
    session: SessionDep,
    _p: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
) -> list[dict[str, Any]]:
    """A device's events in stored order; page with ``after`` = last ``seq``."""
    registry.get(session, device_id)
    return [
        {
            "seq": e.seq,
            "id": e.id,
            "type": e.type,
            "ts": as_utc(e.ts).isoformat(),
            "received_at": as_utc(e.received_at).isoformat(),
            "body": e.body,
        }
        for e in registry.events(session, device_id, limit=limit, after=after)
    ]


@router.post(
    "/{device_id}/commands/{name}",
    responses={
        503: refusal("Central has no broker link"),
        504: refusal("The node did not answer in ``timeout_s``"),
    },
)
def run_command(
    device_id: str,
    name: str,
    body: CommandIn,
    services: ServicesDep,
    session: SessionDep,
    who: Technician,
) -> dict[str, Any]:
    """Send a command and return the node's reply (or its refusal)."""
    site = registry.get(session, device_id).site
    check_scope(services, who, site=site, obj=f"devices/{device_id}", act="command")
    if services.link is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no broker link")
    services.audit.append(
        actor=who.username,
        action="command.send",
        target=f"{device_id}/{name}",
        detail={"args": body.args},
        now=services.clock.now(),
    )
    reply = services.link.command(device_id, name, body.args, timeout=body.timeout_s)
    return reply.model_dump()


class ReplaceIn(BaseModel):
    """The enrolled node that takes over."""

    new: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


def _crl_path(services: ServicesDep) -> Path:
    return services.settings.data_dir / "ca" / "crl.pem"


@router.post("/{device_id}/retire")
def retire_device(
    device_id: str, services: ServicesDep, session: SessionDep, who: Technician
) -> dict[str, Any]:
    """Revoke the device's certificates (CRL written) and stop taking its data."""
    site = registry.get(session, device_id).site
    check_scope(services, who, site=site, obj="devices", act="retire")
    ca = fleet_ca(services)
    now = services.clock.now()
    serials = enrolment.retire(
        session, ca, device_id, now=now, crl_path=_crl_path(services)
    )
    services.audit.append(
        actor=who.username,
        action="device.retire",
        target=device_id,
        detail={"revoked": [format(s, "x") for s in serials]},
        now=now,
    )
    return {**registry.view(registry.get(session, device_id)), "revoked": len(serials)}


@router.post("/{device_id}/replace")
def replace_device(
    device_id: str,
    body: ReplaceIn,
    services: ServicesDep,
    session: SessionDep,
    who: Technician,
) -> dict[str, Any]:
    """Hand a swapped node's site, groups and configuration to its successor."""
    site = registry.get(session, device_id).site
    check_scope(services, who, site=site, obj="devices", act="replace")
    ca = fleet_ca(services)
    now = services.clock.now()
    new = enrolment.replace(
        session, ca, device_id, body.new, now=now, crl_path=_crl_path(services)
    )
    services.audit.append(
        actor=who.username,
        action="device.replace",
        target=device_id,
        detail={"new": body.new},
        now=now,
    )
    if services.link is not None:
        twin.reconcile(session, services.link, only=[body.new])
    return registry.view(new)
