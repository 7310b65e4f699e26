"""Fleet policy: layered, versioned documents → desired configurations.

Reads and writes go through the permission matrix (``policy``): a site or
device layer belongs to that site's district, fleet/kind/group layers to the
whole county. A layer whose configuration could not be published within the
broker's packet limit is refused before it is stored. Merging is
:mod:`central.fleet.policy`'s, storage and publishing :mod:`central.fleet.twin`'s.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, status
from fastapi import Path as PathParam
from sqlmodel import col, select

from central.api.deps import (
    Services,
    ServicesDep,
    SessionDep,
    check_scope,
    may,
    permit,
)
from central.fleet import twin
from central.fleet.broker_access import JUNCTION_ID, junction_problem
from central.messaging.link import PACKET_OVERHEAD
from central.models import Device, PolicyLayer, as_utc
from central.operators.auth import Principal
from provisioning.identity import is_service_name

router = APIRouter(prefix="/api/v1/policy", tags=["policy"])
Reader = Annotated[Principal, Depends(permit("policy", "read"))]
Writer = Annotated[Principal, Depends(permit("policy", "write"))]
Name = Annotated[str, PathParam(max_length=64)]
# The envelope and config wrapper around a layer's values on the wire.
CONFIG_OVERHEAD = 512


def _site(session: SessionDep, scope: str, target: str) -> str:
    """The district a layer belongs to (``*``: the whole county)."""
    return {"site": target, "device": _site_of(session, target)}.get(scope, "*")


@router.get("")
def list_layers(
    session: SessionDep, services: ServicesDep, who: Reader
) -> list[dict[str, Any]]:
    """The layers in force, newest version of each, within the caller's districts.

    Fleet, kind and group layers apply county-wide and are shown to every
    policy reader; site and device layers only in the caller's scope.
    """
    return [
        {
            "scope": la.scope,
            "target": la.target,
            "version": la.version,
            "values": dict(la.values),
        }
        for la in twin.current_layers(session)
        if la.scope not in {"site", "device"}
        or may(
            services,
            who,
            site=_site(session, la.scope, la.target),
            obj="policy",
            act="read",
        )
    ]


@router.get("/{scope}/{target}/history")
def history(
    scope: Name, target: Name, session: SessionDep, services: ServicesDep, who: Reader
) -> list[dict[str, Any]]:
    """Every version of one layer, newest first."""
    if scope in {"site", "device"}:
        site = _site(session, scope, target)
        check_scope(services, who, site=site, obj="policy", act="read")
    rows = session.exec(
        select(PolicyLayer)
        .where(PolicyLayer.scope == scope, PolicyLayer.target == target)
        .order_by(col(PolicyLayer.version).desc())
    ).all()
    return [
        {
            "version": r.version,
            "values": r.values,
            "author": r.author,
            "created_at": as_utc(r.created_at).isoformat(),
        }
        for r in rows
    ]


@router.put("/{scope}/{target}")
def put_layer(
    scope: Name,
    target: Name,
    values: Annotated[dict[str, Any], Body(max_length=256)],
    services: ServicesDep,
    session: SessionDep,
    principal: Writer,
) -> dict[str, Any]:
    """Store a new version of a layer and publish the configurations it changes."""
    check_scope(
        services,
        principal,
        site=_site(session, scope, target),
        obj="policy",
        act="write",
    )
    _check_size(services, values)
    if scope == "device" and values.get("junction"):
        _check_junction(session, target, values["junction"])
    row = twin.put_layer(
        session,
        scope=scope,
        target=target,
        values=values,
        author=principal.username,
        now=services.clock.now(),
    )
    services.audit.append(
        actor=principal.username,
        action="policy.put",
        target=f"{scope}/{target}",
        detail={"version": row.version, "values": values},
        now=services.clock.now(),
    )
    published = 0
    if services.link is not None:
        published = twin.reconcile(session, services.link)
        services.metrics.config_published.inc(published)
    return {
        "scope": row.scope,
        "target": row.target,
        "version": row.version,
        "published": published,
    }


def _check_size(services: Services, values: dict[str, Any]) -> None:
    """413 for a layer that alone would not fit the broker's packet limit."""
    limit = services.settings.broker_max_packet
    size = len(json.dumps(values, ensure_ascii=False).encode())
    if size + PACKET_OVERHEAD + CONFIG_OVERHEAD > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"expected a policy layer that fits the broker's max_packet_size of "
            f"{limit} bytes, got {size} bytes of values",
        )


def _check_junction(session: SessionDep, target: str, junction: object) -> None:
    """422 for a camera junction that names anything but a cabinet of its district.

    A name not registered yet is kept (the cabinet may be enrolled later) but
    gets no broker read grant until it is a live cabinet of the same district.
    """
    camera = session.get(Device, target)
    if camera is None or camera.kind != "camera":
        return
    problem = junction_problem(session, camera, junction)
    if problem is None or (
        isinstance(junction, str)
        and JUNCTION_ID.fullmatch(junction)
        and not is_service_name(junction)
        and session.get(Device, junction) is None
    ):
        return
    raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problem)


def _site_of(session: SessionDep, device_id: str) -> str:
    device = session.get(Device, device_id)
    return device.site if device is not None else "*"
