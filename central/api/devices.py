"""Devices: the registry, their events, desired vs reported config, commands.

Every read and write goes through the permission matrix: the role must hold
the action on ``devices/<kind>`` and the device's site must be in the
operator's scope. Commands that change a node's trust (``trust_key``,
``factory_reset``) are refused here and have their own admin-only route
with a stated reason. Storage is :mod:`central.fleet.registry`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from central.api.deps import (
    MAX_ROW,
    Services,
    ServicesDep,
    SessionDep,
    check_scope,
    fleet_ca,
    permit,
    refusal,
)
from central.fleet import enrolment, registry, twin
from central.fleet.policy import desired_config
from central.messaging.link import PACKET_OVERHEAD, PacketTooLargeError
from central.models import Device, as_utc
from central.operators.auth import Principal
from edge.protocol import topics
from edge.protocol.messages import KIND_CONFIG

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

KINDS = tuple(KIND_CONFIG)
DEVICE = "devices/{kind}"
ANY_KIND = tuple(f"devices/{k}" for k in KINDS)
# Commands that change whom a node trusts: never through the generic route.
DANGEROUS = frozenset({"trust_key", "factory_reset"})
# What the generic command route carries: the everyday commands every node
# answers (edge.agent). A cabinet's plan and mode, a handheld's alert,
# dispatch, sos_ack and lookup_result, and ota go only through their own
# services (signals, police, OTA), which check their own permissions.
EVERYDAY = frozenset({"ping", "health"})
# Event bodies that belong to a domain: readable through a device's events
# only with that domain's read permission (red team 6).
EVENT_BODIES = {
    "complaint": "complaints/personal",
    "rating": "complaints/personal",
    "plate": "plates",
    "violation": "plates",
    "sos": "police",
    "position": "police",
    "lookup": "police",
    "dispatch_ack": "police",
    "phone_report": "police",
}
Name = Annotated[str, Field(max_length=64)]
Reader = Annotated[Principal, Depends(permit(DEVICE, "read", any_of=ANY_KIND))]
Events = Annotated[Principal, Depends(permit(DEVICE, "events", any_of=ANY_KIND))]
Config = Annotated[Principal, Depends(permit(DEVICE, "config", any_of=ANY_KIND))]
Registrar = Annotated[Principal, Depends(permit(DEVICE, "register", any_of=ANY_KIND))]
Updater = Annotated[Principal, Depends(permit(DEVICE, "update", any_of=ANY_KIND))]
Commander = Annotated[Principal, Depends(permit(DEVICE, "command", any_of=ANY_KIND))]
Retirer = Annotated[Principal, Depends(permit(DEVICE, "retire", any_of=ANY_KIND))]
Replacer = Annotated[Principal, Depends(permit(DEVICE, "replace", any_of=ANY_KIND))]
TrustAdmin = Annotated[Principal, Depends(permit("trust", "write"))]


def _device(
    services: Services, session: SessionDep, who: Principal, device_id: str, act: str
) -> Device:
    """The device, once the matrix allows ``act`` on its kind in its district."""
    device = registry.get(session, device_id)
    check_scope(services, who, site=device.site, obj=f"devices/{device.kind}", act=act)
    return device


class DeviceIn(BaseModel):
    """A device to register."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", max_length=64)]
    kind: Name
    site: Name = ""
    groups: list[Name] = Field(default_factory=list, max_length=32)
    lat: float | None = None
    lon: float | None = None


class DevicePatch(BaseModel):
    """Changes to a device's placement."""

    site: Name | None = None
    groups: list[Name] | None = Field(default=None, max_length=32)
    lat: float | None = None
    lon: float | None = None


class CommandIn(BaseModel):
    """Arguments of a remote command (their size is checked against the broker)."""

    args: dict[str, Any] = Field(default_factory=dict, max_length=64)
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0


class TrustKeyIn(BaseModel):
    """A command-key rotation: the key to add and/or the key id to retire."""

    add: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9+/=]{40,48}$", max_length=48
    )
    remove: str | None = Field(default=None, pattern=r"^[0-9a-f]{8,64}$", max_length=64)
    reason: str = Field(min_length=8, max_length=500)
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0


def _too_large(exc: PacketTooLargeError) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc))


@router.get("")
def list_devices(
    session: SessionDep,
    services: ServicesDep,
    who: Reader,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    online: bool | None = None,
    drift: bool | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
) -> dict[str, Any]:
    """List the devices the caller may read, filtered and paginated on the server."""
    kinds = [
        k
        for k in KINDS
        if services.access.role_allows(who.role, obj=f"devices/{k}", act="read")
    ]
    rows, total = registry.search(
        session,
        kind=kind,
        site=site,
        kinds=kinds,
        sites=None if "*" in who.scope else list(who.scope),
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
    body: DeviceIn, services: ServicesDep, session: SessionDep, who: Registrar
) -> dict[str, Any]:
    """Register a device and publish its desired configuration."""
    check_scope(
        services, who, site=body.site, obj=f"devices/{body.kind}", act="register"
    )
    if enrolment.open_code(session, body.id, now=services.clock.now()):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"expected a device id without an open enrolment code, got {body.id!r}: "
            "the node it was made for enrols it",
        )
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
def get_device(
    device_id: Name, services: ServicesDep, session: SessionDep, who: Reader
) -> dict[str, Any]:
    """One device."""
    return registry.view(_device(services, session, who, device_id, "read"))


@router.patch("/{device_id}")
def patch_device(
    device_id: Name,
    body: DevicePatch,
    services: ServicesDep,
    session: SessionDep,
    who: Updater,
) -> dict[str, Any]:
    """Move a device to another site or groups; its configuration follows."""
    changes = body.model_dump(exclude_unset=True)
    device = _device(services, session, who, device_id, "update")
    if changes.get("site") is not None:
        check_scope(
            services,
            who,
            site=changes["site"],
            obj=f"devices/{device.kind}",
            act="update",
        )
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
def get_config(
    device_id: Name, services: ServicesDep, session: SessionDep, who: Config
) -> dict[str, Any]:
    """Desired configuration, its sources, and what the node reports."""
    device = _device(services, session, who, device_id, "config")
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
    device_id: Name,
    services: ServicesDep,
    session: SessionDep,
    who: Events,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
) -> list[dict[str, Any]]:
    """A device's events (positions too) in stored order; page with ``after``.

    A body the caller's role may not read in its own domain (a complainant's
    name and phone, a plate read, an officer's whereabouts: see
    :data:`EVENT_BODIES`) comes back empty with ``redacted`` set.
    """
    device = _device(services, session, who, device_id, "events")
    may_read: dict[str, bool] = {}

    def shown(kind: str) -> bool:
        need = EVENT_BODIES.get(kind)
        if need is None:
            return True
        if kind not in may_read:
            may_read[kind] = services.access.allowed(
                who, site=device.site, obj=need, act="read"
            )
        return may_read[kind]

    return [
        {
            "seq": e.seq,
            "id": e.id,
            "type": e.type,
            "ts": as_utc(e.ts).isoformat(),
            "received_at": as_utc(e.received_at).isoformat(),
            "body": e.body if shown(e.type) else {},
            **({} if shown(e.type) else {"redacted": True}),
        }
        for e in registry.events(session, device_id, limit=limit, after=after)
    ]


@router.post(
    "/{device_id}/commands/{name}",
    responses={
        413: refusal("The command would exceed the broker's packet limit"),
        503: refusal("Central has no broker link"),
        504: refusal("The node did not answer in ``timeout_s``"),
    },
)
def run_command(
    device_id: Name,
    name: Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_-]{0,63}$")],
    body: CommandIn,
    services: ServicesDep,
    session: SessionDep,
    who: Commander,
) -> dict[str, Any]:
    """Send a command and return the node's reply (or its refusal)."""
    if name in DANGEROUS:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"expected an everyday command, got {name!r}: commands that change "
            "a node's trust go through POST /api/v1/devices/{id}/trust-key "
            "(admin, with a reason)",
        )
    _device(services, session, who, device_id, "command")
    if name not in EVERYDAY:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"expected an everyday command ({', '.join(sorted(EVERYDAY))}), got "
            f"{name!r}: signal plans, police messages and OTA go through their "
            "own pages",
        )
    return _send(
        services,
        who,
        device_id,
        name,
        body.args,
        timeout=body.timeout_s,
        detail={"args": body.args},
    )


def _send(
    services: Services,
    who: Principal,
    device_id: str,
    name: str,
    args: dict[str, Any],
    *,
    timeout: float,
    detail: dict[str, Any],
    action: str = "command.send",
) -> dict[str, Any]:
    """Check the size, audit, send and wait for the reply."""
    if services.link is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no broker link")
    limit = services.settings.broker_max_packet
    size = len(json.dumps(args, ensure_ascii=False).encode())
    if size + PACKET_OVERHEAD > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"expected command arguments that fit the broker's max_packet_size "
            f"of {limit} bytes, got {size} bytes",
        )
    try:
        services.link.fit(
            topics.command(device_id, name),
            services.link.signed(device_id, name, args),
        )
    except PacketTooLargeError as exc:
        raise _too_large(exc) from exc
    services.audit.append(
        actor=who.username,
        action=action,
        target=f"{device_id}/{name}",
        detail=detail,
        now=services.clock.now(),
    )
    try:
        reply = services.link.command(device_id, name, args, timeout=timeout)
    except PacketTooLargeError as exc:
        raise _too_large(exc) from exc
    return reply.model_dump()


@router.post(
    "/{device_id}/trust-key",
    responses={
        503: refusal("Central has no broker link"),
        504: refusal("The node did not answer in ``timeout_s``"),
    },
)
def rotate_trust_key(
    device_id: Name,
    body: TrustKeyIn,
    services: ServicesDep,
    session: SessionDep,
    who: TrustAdmin,
) -> dict[str, Any]:
    """Add and/or retire a node's command key (admin only, reason audited)."""
    if body.add is None and body.remove is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "expected a key to add or a key id to remove, got neither",
        )
    device = registry.get(session, device_id)
    check_scope(services, who, site=device.site, obj="trust", act="write")
    args = {
        k: v for k, v in (("add", body.add), ("remove", body.remove)) if v is not None
    }
    return _send(
        services,
        who,
        device_id,
        "trust_key",
        args,
        timeout=body.timeout_s,
        detail={**args, "reason": body.reason},
        action="trust.rotate",
    )


class ReplaceIn(BaseModel):
    """The enrolled node that takes over."""

    new: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", max_length=64)]


def _crl_path(services: ServicesDep) -> Path:
    return services.settings.data_dir / "ca" / "crl.pem"


@router.post("/{device_id}/retire")
def retire_device(
    device_id: Name, services: ServicesDep, session: SessionDep, who: Retirer
) -> dict[str, Any]:
    """Revoke the device's certificates (CRL written) and stop taking its data."""
    _device(services, session, who, device_id, "retire")
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
    device_id: Name,
    body: ReplaceIn,
    services: ServicesDep,
    session: SessionDep,
    who: Replacer,
) -> dict[str, Any]:
    """Hand a swapped node's site, groups and configuration to its successor."""
    _device(services, session, who, device_id, "replace")
    # The successor too must be the caller's: else a decoy in one's own
    # district would pull another district's device across (red team 4).
    _device(services, session, who, body.new, "replace")
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
