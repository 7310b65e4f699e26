"""Fleet policy: layered, versioned documents → desired configurations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlmodel import col, select

from central import twin
from central.api.deps import (
    PrincipalDep,
    ServicesDep,
    SessionDep,
    check_scope,
    require,
)
from central.auth import Principal
from central.models import Device, PolicyLayer, as_utc

router = APIRouter(prefix="/api/v1/policy", tags=["policy"])


@router.get("")
def list_layers(session: SessionDep, _p: PrincipalDep) -> list[dict[str, Any]]:
    """The layers in force, newest version of each."""
    return [
        {
            "scope": la.scope,
            "target": la.target,
            "version": la.version,
            "values": dict(la.values),
        }
        for la in twin.current_layers(session)
    ]


@router.get("/{scope}/{target}/history")
def history(
    scope: str, target: str, session: SessionDep, _p: PrincipalDep
) -> list[dict[str, Any]]:
    """Every version of one layer, newest first."""
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
    scope: str,
    target: str,
    values: dict[str, Any],
    services: ServicesDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("technician"))],
) -> dict[str, Any]:
    """Store a new version of a layer and publish the configurations it changes."""
    site = {"site": target, "device": _site_of(session, target)}.get(scope, "*")
    check_scope(services, principal, site=site, obj="policy", act="write")
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


def _site_of(session: SessionDep, device_id: str) -> str:
    device = session.get(Device, device_id)
    return device.site if device is not None else "*"
